#include "weights/safetensors.h"

#include <ATen/ATen.h>
#include <c10/core/Storage.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_parse.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

namespace a2a {

namespace {

// The limit the reference implementation enforces on the JSON header.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;
// An unknown field inside a tensor entry may hold nested values; deeper nesting is hostile.
constexpr int kMaxUnknownNesting = 64;
// No real tensor has this many dimensions; the cap bounds what a hostile shape list can allocate.
constexpr size_t kMaxRank = 64;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw_input_error("bad_safetensors", path + ": " + what);
}

[[noreturn]] void fail_index(const std::string& path, const std::string& what) {
  throw_input_error("bad_safetensors_index", path + ": " + what);
}

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};

const DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

// Sizes of dtypes the format knows but LibTorch 1.13 cannot hold; still needed to validate spans
// and to list such files.
const std::pair<const char*, size_t> kForeignDtypes[] = {
    {"U16", 2},       {"U32", 4},         {"U64", 8},         {"F8_E4M3", 1}, {"F8_E5M2", 1},
    {"F8_E4M3FN", 1}, {"F8_E5M2FNUZ", 1}, {"F8_E4M3FNUZ", 1}, {"C64", 8},     {"E8M0", 1}};

struct Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base) ::munmap(base, size);
  }
};

// The context of a view's DataPtr: it owns a reference to the mapping, and its deleter function
// identifies mapped views (release_mapped_pages).
struct ViewContext {
  std::shared_ptr<const Mapping> mapping;
};

void delete_view_context(void* context) { delete static_cast<ViewContext*>(context); }

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// Builds the tensor records straight from the parser's events: the header is never held as a DOM,
// so a 100 MB hostile header costs little more than the records it describes.
class HeaderParser : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit HeaderParser(const std::string& path) : path_(path) {}

  std::vector<TensorRecord> records;
  std::map<std::string, std::string> metadata;

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v >= 0) return number_unsigned(static_cast<number_unsigned_t>(v));
    return scalar("a negative number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (skip_depth_ > 0) return true;
    if (state_ == State::Shape) {
      if (current_.shape.size() >= kMaxRank) {
        fail(path_,
             "tensor " + in_quotes(current_.name) + " has more than " + std::to_string(kMaxRank) + " dimensions");
      }
      current_.shape.push_back(
          v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? -1 : static_cast<int64_t>(v));
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) shape_overflow_ = true;
      return true;
    }
    if (state_ == State::Offsets) {
      if (offsets_.size() >= 2) fail(path_, "tensor " + in_quotes(current_.name) + " has more than two data_offsets");
      offsets_.push_back(v);
      return true;
    }
    return scalar("a number");
  }
  bool number_float(number_float_t, const string_t&) override { return scalar("a non-integer number"); }
  bool string(string_t& s) override {
    if (skip_depth_ > 0) return true;
    if (state_ == State::Metadata) {
      metadata[key_] = s;
      return true;
    }
    if (state_ == State::Entry && field_ == "dtype") {
      current_.dtype = s;
      has_dtype_ = true;
      return true;
    }
    return scalar("a string");
  }
  bool binary(binary_t&) override { return scalar("binary data"); }

  bool start_object(std::size_t) override {
    if (skip_depth_ > 0) return enter_skip();
    switch (state_) {
      case State::Start: state_ = State::Top; return true;
      case State::Top:
        if (key_ == "__metadata__") {
          state_ = State::Metadata;
        } else {
          state_ = State::Entry;
          current_ = TensorRecord{};
          current_.name = key_;
          has_dtype_ = has_shape_ = has_offsets_ = shape_overflow_ = false;
          offsets_.clear();
        }
        keys_.clear();
        return true;
      case State::Entry:
        if (field_ == "dtype" || field_ == "shape" || field_ == "data_offsets") return scalar("an object");
        return enter_skip();
      case State::Metadata: fail(path_, "metadata value for " + in_quotes(key_) + " is not a string (it is an object)");
      default: return scalar("an object");
    }
  }
  bool end_object() override {
    if (skip_depth_ > 0) return leave_skip();
    if (state_ == State::Metadata) {
      state_ = State::Top;
    } else if (state_ == State::Entry) {
      finish_entry();
      state_ = State::Top;
    } else if (state_ == State::Top) {
      state_ = State::Done;
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (skip_depth_ > 0) return enter_skip();
    if (state_ == State::Entry && field_ == "shape") {
      state_ = State::Shape;
      has_shape_ = true;
      return true;
    }
    if (state_ == State::Entry && field_ == "data_offsets") {
      state_ = State::Offsets;
      has_offsets_ = true;
      return true;
    }
    if (state_ == State::Entry) {
      if (field_ == "dtype") return scalar("an array");
      return enter_skip();
    }
    return scalar("an array");
  }
  bool end_array() override {
    if (skip_depth_ > 0) return leave_skip();
    state_ = State::Entry;
    return true;
  }
  bool key(string_t& k) override {
    if (skip_depth_ > 0) return true;
    if (state_ == State::Top) {
      // Tensor names are checked for duplicates once all are read (SafeTensorsFile::open).
      if (k == "__metadata__" && !seen_metadata_.insert(k).second)
        fail(path_, "__metadata__ appears twice in the header");
      key_ = k;
    } else if (state_ == State::Metadata) {
      if (!keys_.insert(k).second) fail(path_, "metadata key " + in_quotes(k) + " appears twice");
      key_ = k;
    } else {
      if (!keys_.insert(k).second)
        fail(path_, "tensor " + in_quotes(current_.name) + " lists " + in_quotes(k) + " twice");
      field_ = k;
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::json::exception& e) override {
    fail(path_, "header is not valid JSON (byte " + std::to_string(position) + "): " + e.what());
  }

 private:
  enum class State { Start, Top, Metadata, Entry, Shape, Offsets, Done };

  // A scalar or container where the layout does not allow it.
  bool scalar(const char* what) {
    if (skip_depth_ > 0) return true;
    switch (state_) {
      case State::Start: fail(path_, "header is not a JSON object");
      case State::Top:
        if (key_ == "__metadata__") fail(path_, "__metadata__ is not an object");
        fail(path_, "entry for tensor " + in_quotes(key_) + " is not an object");
      case State::Metadata:
        fail(path_, "metadata value for " + in_quotes(key_) + " is not a string (it is " + what + ")");
      case State::Entry:
        if (field_ == "dtype") fail(path_, "tensor " + in_quotes(current_.name) + " has a dtype that is not a string");
        if (field_ == "shape" || field_ == "data_offsets") {
          fail(path_, "tensor " + in_quotes(current_.name) + " has a " + field_ + " that is not an array");
        }
        return true;  // an unknown field with a scalar value: ignored, as the reference does
      case State::Shape:
        fail(path_, "tensor " + in_quotes(current_.name) + " has a shape entry that is " + what +
                        ", not a non-negative integer");
      case State::Offsets:
        fail(path_, "tensor " + in_quotes(current_.name) + " has a data offset that is " + what +
                        ", not a non-negative integer");
      case State::Done: break;
    }
    fail(path_, "unexpected content after the header object");
  }
  bool enter_skip() {
    if (++skip_depth_ > kMaxUnknownNesting)
      fail(path_, "tensor " + in_quotes(current_.name) + " has values nested too deeply");
    return true;
  }
  bool leave_skip() {
    --skip_depth_;
    return true;
  }
  void finish_entry() {
    const std::string& name = current_.name;
    if (!has_dtype_) fail(path_, "tensor " + in_quotes(name) + " has no dtype");
    if (!has_shape_) fail(path_, "tensor " + in_quotes(name) + " has no shape");
    if (!has_offsets_ || offsets_.size() != 2)
      fail(path_, "tensor " + in_quotes(name) + " has no [begin, end] data_offsets");
    if (shape_overflow_) fail(path_, "tensor " + in_quotes(name) + " has a shape whose size overflows");
    current_.begin = offsets_[0];
    current_.end = offsets_[1];
    records.push_back(std::move(current_));
    current_ = TensorRecord{};
  }

  std::string path_;
  State state_ = State::Start;
  std::set<std::string> seen_metadata_;
  std::set<std::string> keys_;  // keys of the current entry or of the metadata object
  std::string key_;             // current top-level or metadata key
  std::string field_;           // current field of a tensor entry
  TensorRecord current_;
  std::vector<uint64_t> offsets_;
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false, shape_overflow_ = false;
  int skip_depth_ = 0;
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

}  // namespace

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.size;
  for (const auto& d : kForeignDtypes)
    if (dtype == d.first) return d.second;
  return 0;
}

at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype, const std::string& tensor_name,
                                           const std::string& file) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.type;
  throw_input_error("unsupported_dtype",
                    file + ": tensor '" + tensor_name + "' has dtype " + dtype +
                        ", which LibTorch 1.13 cannot represent (supported: F64, F32, F16, BF16, I64, I32, I16, "
                        "I8, U8, BOOL); convert it in Python first, e.g. tensor.to(torch.float16)");
}

std::string scalar_to_safetensors_dtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  throw_input_error("bad_dtype", std::string("no safetensors dtype for ") + c10::toString(type));
}

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path, "file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
  }
  // Private and writable so that views are ordinary mutable tensors (copy-on-write);
  // MAP_NORESERVE keeps a large file from being charged against the commit limit.
  void* base = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) fail(path, std::string("cannot map: ") + std::strerror(errno));
  auto mapping = std::make_shared<Mapping>();
  mapping->base = base;
  mapping->size = file_size;
  const auto* bytes = static_cast<const unsigned char*>(base);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > file_size - 8) {
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(file_size) + "-byte file (truncated or not a safetensors file?)");
  }
  if (header_len > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  if (header_len < 2) fail(path, "header is " + std::to_string(header_len) + " bytes, too short for a JSON object");

  check_json_depth(std::string_view(reinterpret_cast<const char*>(bytes + 8), header_len), path);
  HeaderParser parser(path);
  nlohmann::json::sax_parse(bytes + 8, bytes + 8 + header_len, &parser);

  std::shared_ptr<SafeTensorsFile> file(new SafeTensorsFile());
  file->path_ = path;
  file->data_ = bytes + 8 + header_len;
  file->data_size_ = file_size - 8 - header_len;
  file->metadata_ = std::move(parser.metadata);

  for (const auto& rec : parser.records) {
    const std::string& name = rec.name;
    size_t elem = safetensors_dtype_size(rec.dtype);
    if (elem == 0) fail(path, "tensor '" + name + "' has unknown dtype '" + rec.dtype + "'");
    uint64_t count = 1;
    for (int64_t d : rec.shape) {
      uint64_t v = static_cast<uint64_t>(d);
      if (v != 0 && count > std::numeric_limits<uint64_t>::max() / v)
        fail(path, "tensor '" + name + "' has a shape whose size overflows");
      count *= v;
    }
    if (count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / elem) {
      fail(path, "tensor '" + name + "' has a shape whose size overflows");
    }
    if (rec.begin > rec.end || rec.end > file->data_size_) {
      fail(path, "tensor '" + name + "' has data offsets [" + std::to_string(rec.begin) + ", " +
                     std::to_string(rec.end) + "] outside the " + std::to_string(file->data_size_) +
                     "-byte data block");
    }
    if (count * elem != rec.end - rec.begin) {
      fail(path, "tensor '" + name + "' has shape x dtype size " + std::to_string(count * elem) +
                     " bytes but its data span is " + std::to_string(rec.end - rec.begin) + " bytes");
    }
  }

  {
    std::vector<const TensorRecord*> by_name;
    by_name.reserve(parser.records.size());
    for (const auto& r : parser.records) by_name.push_back(&r);
    std::sort(by_name.begin(), by_name.end(),
              [](const TensorRecord* a, const TensorRecord* b) { return a->name < b->name; });
    for (size_t i = 1; i < by_name.size(); ++i) {
      if (by_name[i]->name == by_name[i - 1]->name)
        fail(path, "tensor name '" + by_name[i]->name + "' appears twice in the header");
    }
  }

  // The data block must be covered exactly once, tensors back to back.
  std::vector<TensorRecord> ordered = std::move(parser.records);
  std::sort(ordered.begin(), ordered.end(), [](const TensorRecord& a, const TensorRecord& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (size_t i = 0; i < ordered.size(); ++i) {
    const TensorRecord& r = ordered[i];
    if (r.begin < cursor) {
      fail(path, "tensor '" + r.name + "' [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                     "] overlaps tensor '" + ordered[i - 1].name + "' (ends at " + std::to_string(cursor) + ")");
    }
    if (r.begin > cursor) {
      fail(path, "tensor '" + r.name + "' starts at " + std::to_string(r.begin) + " but the previous tensor ends at " +
                     std::to_string(cursor) + " (data not contiguous)");
    }
    cursor = r.end;
  }
  if (cursor != file->data_size_) {
    fail(path, "the data block has " + std::to_string(file->data_size_ - cursor) + " bytes no tensor describes");
  }

  file->records_ = std::move(ordered);
  for (size_t i = 0; i < file->records_.size(); ++i) file->index_.emplace(file->records_[i].name, i);
  file->mapping_ = std::move(mapping);
  return file;
}

SafeTensorsFile::~SafeTensorsFile() = default;

bool SafeTensorsFile::contains(const std::string& name) const { return index_.count(name) > 0; }

const TensorRecord& SafeTensorsFile::record(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw_input_error("missing_tensor", path_ + ": no tensor named '" + name + "'");
  return records_[it->second];
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(records_.size());
  for (const auto& r : records_) out.push_back(r.name);
  return out;
}

at::Tensor SafeTensorsFile::tensor(const std::string& name) const {
  const TensorRecord& rec = record(name);
  at::ScalarType type = safetensors_dtype_to_scalar(rec.dtype, name, path_);
  const unsigned char* ptr = data_ + rec.begin;
  auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  size_t elem = safetensors_dtype_size(rec.dtype);
  if (rec.end == rec.begin) return at::empty(rec.shape, options);
  if (reinterpret_cast<uintptr_t>(ptr) % elem != 0) {
    // Misaligned for its dtype (a header not padded to 8 bytes): a copy is the safe choice.
    at::Tensor out = at::empty(rec.shape, options);
    std::memcpy(out.data_ptr(), ptr, rec.bytes());
    return out;
  }
  auto* context = new ViewContext{std::static_pointer_cast<const Mapping>(mapping_)};
  c10::DataPtr data(const_cast<unsigned char*>(ptr), context, &delete_view_context, at::Device(at::kCPU));
  c10::Storage storage(c10::Storage::use_byte_size_t(), rec.bytes(), std::move(data), /*allocator=*/nullptr,
                       /*resizable=*/false);
  return at::empty({0}, options).set_(storage, 0, rec.shape, contiguous_strides(rec.shape));
}

std::map<std::string, at::Tensor> SafeTensorsFile::tensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& r : records_) out[r.name] = tensor(r.name);
  return out;
}

bool is_mapped_view(const at::Tensor& tensor) {
  if (!tensor.defined() || !tensor.has_storage()) return false;
  return tensor.storage().data_ptr().get_deleter() == &delete_view_context;
}

namespace {
bool advise_mapped_pages(const at::Tensor& view, int advice) {
  if (!is_mapped_view(view)) return false;
  const c10::Storage& storage = view.storage();
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(storage.data());
  const uintptr_t end = begin + storage.nbytes();
  // Whole pages inside the tensor only: the pages it shares with its neighbours stay.
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, advice);
  return true;
}
}  // namespace

bool release_mapped_pages(const at::Tensor& view) { return advise_mapped_pages(view, MADV_DONTNEED); }

bool page_out_mapped_pages(const at::Tensor& view) {
#ifndef MADV_PAGEOUT
  constexpr int MADV_PAGEOUT = 21;  // Linux >= 5.4; older kernels answer EINVAL and keep the pages
#endif
  return advise_mapped_pages(view, MADV_PAGEOUT);
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

std::shared_ptr<SafeTensorsCheckpoint> SafeTensorsCheckpoint::open(const std::string& path) {
  std::shared_ptr<SafeTensorsCheckpoint> ckpt(new SafeTensorsCheckpoint());
  ckpt->path_ = path;
  const bool is_index = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    ckpt->files_.push_back(SafeTensorsFile::open(path));
    for (const auto& r : ckpt->files_[0]->records()) ckpt->owner_[r.name] = 0;
    return ckpt;
  }
  ckpt->sharded_ = true;
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) fail_index(path, "cannot read: " + ec.message());
  if (size > kMaxHeaderBytes) fail_index(path, "index is " + std::to_string(size) + " bytes, over the 100 MB limit");
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json index;
  try {
    index = parse_json_bounded(text, path);
  } catch (const nlohmann::json::exception& e) {
    fail_index(path, std::string("not valid JSON: ") + e.what());
  }
  if (!index.is_object()) fail_index(path, "not a JSON object");
  auto meta = index.find("metadata");
  if (meta != index.end() && !meta->is_null()) {
    if (!meta->is_object()) fail_index(path, "\"metadata\" is not an object");
    for (auto it = meta->begin(); it != meta->end(); ++it) {
      ckpt->index_metadata_[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    }
  }
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) fail_index(path, "has no \"weight_map\" object");
  if (map->empty()) fail_index(path, "\"weight_map\" lists no tensors");

  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::map<std::string, size_t> shard_of_file;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) fail_index(path, "weight_map entry for '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    const std::filesystem::path rel(shard);
    bool escapes = shard.empty() || rel.is_absolute();
    for (const auto& part : rel)
      if (part == "..") escapes = true;
    if (escapes)
      fail_index(path, "shard name '" + shard + "' for tensor '" + it.key() + "' is not a file beside the index");
    auto found = shard_of_file.find(shard);
    if (found == shard_of_file.end()) {
      const std::string shard_path = (folder / rel).string();
      if (!std::filesystem::exists(shard_path, ec)) {
        fail_index(path, "shard '" + shard + "' (holding '" + it.key() + "') does not exist");
      }
      ckpt->files_.push_back(SafeTensorsFile::open(shard_path));
      found = shard_of_file.emplace(shard, ckpt->files_.size() - 1).first;
    }
    if (!ckpt->files_[found->second]->contains(it.key())) {
      fail_index(path, "tensor '" + it.key() + "' is mapped to shard '" + shard + "', which does not hold it");
    }
    ckpt->owner_[it.key()] = found->second;
  }
  for (size_t i = 0; i < ckpt->files_.size(); ++i) {
    for (const auto& r : ckpt->files_[i]->records()) {
      auto owner = ckpt->owner_.find(r.name);
      if (owner == ckpt->owner_.end()) {
        fail_index(path, "shard '" + ckpt->files_[i]->path() + "' holds tensor '" + r.name +
                             "', which the index does not list");
      }
      if (owner->second != i) {
        fail_index(path, "tensor '" + r.name + "' is in both '" + ckpt->files_[i]->path() + "' and '" +
                             ckpt->files_[owner->second]->path() + "'");
      }
    }
  }
  return ckpt;
}

std::vector<TensorRecord> SafeTensorsCheckpoint::records() const {
  std::vector<TensorRecord> out;
  for (const auto& f : files_) out.insert(out.end(), f->records().begin(), f->records().end());
  return out;
}

const SafeTensorsFile& SafeTensorsCheckpoint::file_of(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) throw_input_error("missing_tensor", path_ + ": no tensor named '" + name + "'");
  return *files_[it->second];
}

std::map<std::string, at::Tensor> SafeTensorsCheckpoint::tensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& f : files_)
    for (const auto& r : f->records()) out[r.name] = f->tensor(r.name);
  return out;
}

std::map<std::string, std::string> SafeTensorsCheckpoint::metadata() const {
  return files_.empty() ? std::map<std::string, std::string>{} : files_.front()->metadata();
}

uint64_t SafeTensorsCheckpoint::data_bytes() const {
  uint64_t total = 0;
  for (const auto& f : files_) total += f->data_bytes();
  return total;
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  return SafeTensorsCheckpoint::open(path)->tensors();
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

[[noreturn]] void fail_write(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Input, "write_failed", path + ": " + what);
}

struct PlannedTensor {
  std::string name;
  at::Tensor tensor;
  std::string dtype;
  size_t alignment = 1;
  uint64_t bytes = 0;
  uint64_t begin = 0;
};

std::vector<PlannedTensor> plan_layout(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  std::vector<PlannedTensor> plan;
  for (const auto& kv : tensors) {
    if (kv.first == "__metadata__") fail_write(path, "'__metadata__' cannot be a tensor name");
    if (!kv.second.defined()) fail_write(path, "tensor '" + kv.first + "' is undefined");
    PlannedTensor p;
    p.name = kv.first;
    p.tensor = kv.second;
    try {
      p.dtype = scalar_to_safetensors_dtype(kv.second.scalar_type());
    } catch (const Error&) {
      fail_write(path, "tensor '" + kv.first + "' has dtype " + std::string(c10::toString(kv.second.scalar_type())) +
                           ", which safetensors cannot store");
    }
    p.alignment = safetensors_dtype_size(p.dtype);
    p.bytes = static_cast<uint64_t>(kv.second.numel()) * p.alignment;
    plan.push_back(std::move(p));
  }
  // Widest dtype first, then by name (as the reference writer orders them): with the header padded
  // to 8 bytes, every tensor then starts on a multiple of its own element size.
  std::sort(plan.begin(), plan.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    return a.alignment != b.alignment ? a.alignment > b.alignment : a.name < b.name;
  });
  uint64_t offset = 0;
  for (auto& p : plan) {
    p.begin = offset;
    offset += p.bytes;
  }
  return plan;
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<PlannedTensor> plan = plan_layout(path, tensors);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
    header["__metadata__"] = std::move(meta);
  }
  for (const auto& p : plan) {
    header[p.name] = {
        {"dtype", p.dtype}, {"shape", p.tensor.sizes().vec()}, {"data_offsets", {p.begin, p.begin + p.bytes}}};
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail_write(path, std::string("a tensor name or metadata entry is not valid UTF-8: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);

  write_file_atomically(path, [&](int fd) {
    write_all(fd, length, sizeof(length), path);
    write_all(fd, text.data(), text.size(), path);
    for (const auto& p : plan) {
      if (p.bytes == 0) continue;
      at::Tensor cpu = p.tensor.device().is_cpu() ? p.tensor.contiguous() : p.tensor.to(at::kCPU).contiguous();
      write_all(fd, cpu.data_ptr(), p.bytes, path);
    }
  });
}

std::string save_safetensors_sharded(const std::string& folder, const std::string& base,
                                     const std::map<std::string, at::Tensor>& tensors, uint64_t max_shard_bytes,
                                     const std::map<std::string, std::string>& metadata) {
  std::vector<PlannedTensor> plan = plan_layout(folder + "/" + base, tensors);
  std::vector<std::vector<const PlannedTensor*>> shards;
  uint64_t current = 0;
  for (const auto& p : plan) {
    if (shards.empty() || (current + p.bytes > max_shard_bytes && !shards.back().empty())) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(&p);
    current += p.bytes;
  }
  if (shards.empty()) shards.emplace_back();
  auto shard_name = [&](size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    return base + buf;
  };
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  uint64_t total = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::map<std::string, at::Tensor> subset;
    for (const auto* p : shards[i]) {
      subset[p->name] = p->tensor;
      weight_map[p->name] = shard_name(i);
      total += p->bytes;
    }
    save_safetensors(folder + "/" + shard_name(i), subset, metadata);
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string index_path = folder + "/" + base + ".safetensors.index.json";
  const std::string text = index.dump(2) + "\n";
  write_file_atomically(index_path, [&](int fd) { write_all(fd, text.data(), text.size(), index_path); });
  return index_path;
}

}  // namespace a2a
