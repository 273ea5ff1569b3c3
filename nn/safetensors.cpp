#include "nn/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "pipeline/error.h"

namespace a2a {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw_input_error("bad_safetensors", path + ": " + what);
}

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};

const DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4},  {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},    {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

// Sizes of dtypes the format knows but LibTorch 1.13 cannot hold; still needed to validate spans.
const std::pair<const char*, size_t> kForeignDtypes[] = {
    {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E4M3FN", 1}, {"F8_E5M2FNUZ", 1},
    {"F8_E4M3FNUZ", 1}, {"C64", 8}, {"F4", 1}, {"F6_E2M3", 1}, {"F6_E3M2", 1}, {"E8M0", 1}};

}  // namespace

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
  fail(file, "tensor '" + tensor_name + "' has dtype " + dtype +
                 ", which LibTorch 1.13 cannot represent (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, "
                 "BOOL)");
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
  void* base = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) fail(path, std::string("cannot map: ") + std::strerror(errno));
  auto mapping = std::shared_ptr<void>(base, [file_size](void* p) { ::munmap(p, file_size); });
  const auto* bytes = static_cast<const unsigned char*>(base);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  if (header_len > file_size - 8) {
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(file_size) + "-byte file (truncated?)");
  }

  std::set<std::string> seen_keys;
  std::string duplicate;
  nlohmann::json::parser_callback_t on_event = [&](int depth, nlohmann::json::parse_event_t event,
                                                   nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen_keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len, on_event);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail(path, "tensor name '" + duplicate + "' appears twice in the header");
  if (!header.is_object()) fail(path, "header is not a JSON object");

  std::shared_ptr<SafeTensorsFile> file(new SafeTensorsFile());
  file->path_ = path;
  file->data_ = bytes + 8 + header_len;
  file->data_size_ = file_size - 8 - header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) fail(path, "metadata value for '" + m.key() + "' is not a string");
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail(path, "entry for tensor '" + name + "' is not an object");
    auto dt = entry.find("dtype");
    auto sh = entry.find("shape");
    auto off = entry.find("data_offsets");
    if (dt == entry.end() || !dt->is_string()) fail(path, "tensor '" + name + "' has no string dtype");
    if (sh == entry.end() || !sh->is_array()) fail(path, "tensor '" + name + "' has no shape array");
    if (off == entry.end() || !off->is_array() || off->size() != 2) {
      fail(path, "tensor '" + name + "' has no [begin, end] data_offsets");
    }
    TensorRecord rec;
    rec.name = name;
    rec.dtype = dt->get<std::string>();
    size_t elem = safetensors_dtype_size(rec.dtype);
    if (elem == 0) fail(path, "tensor '" + name + "' has unknown dtype '" + rec.dtype + "'");
    uint64_t count = 1;
    bool overflow = false;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) fail(path, "tensor '" + name + "' has a shape entry that is not a non-negative integer");
      uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
      rec.shape.push_back(static_cast<int64_t>(v));
      if (v != 0 && count > std::numeric_limits<uint64_t>::max() / v) overflow = true;
      count *= v;
    }
    if (overflow || count > std::numeric_limits<uint64_t>::max() / elem) {
      fail(path, "tensor '" + name + "' has a shape whose size overflows");
    }
    for (const auto& o : *off) {
      if (!o.is_number_unsigned()) fail(path, "tensor '" + name + "' has a data offset that is not a non-negative integer");
    }
    rec.begin = (*off)[0].get<uint64_t>();
    rec.end = (*off)[1].get<uint64_t>();
    if (rec.begin > rec.end || rec.end > file->data_size_) {
      fail(path, "tensor '" + name + "' has data offsets [" + std::to_string(rec.begin) + ", " +
                     std::to_string(rec.end) + "] outside the " + std::to_string(file->data_size_) +
                     "-byte data block");
    }
    if (count * elem != rec.end - rec.begin) {
      fail(path, "tensor '" + name + "' has shape x dtype size " + std::to_string(count * elem) +
                     " bytes but its data span is " + std::to_string(rec.end - rec.begin) + " bytes");
    }
    file->records_.push_back(std::move(rec));
  }

  // The data block must be covered exactly once, tensors back to back.
  std::vector<const TensorRecord*> by_offset;
  for (const auto& r : file->records_) by_offset.push_back(&r);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorRecord* a, const TensorRecord* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  for (const auto* r : by_offset) {
    if (r->begin < cursor) fail(path, "tensor '" + r->name + "' overlaps the tensor before it");
    if (r->begin > cursor) {
      fail(path, "tensor '" + r->name + "' starts at " + std::to_string(r->begin) + " but the previous tensor ends at " +
                     std::to_string(cursor) + " (data not contiguous)");
    }
    cursor = r->end;
  }
  if (cursor != file->data_size_) {
    fail(path, "the data block has " + std::to_string(file->data_size_ - cursor) + " bytes no tensor describes");
  }

  // Keep the file's own order (by offset) for listings.
  std::vector<TensorRecord> ordered;
  for (const auto* r : by_offset) ordered.push_back(*r);
  file->records_ = std::move(ordered);
  for (size_t i = 0; i < file->records_.size(); ++i) file->index_[file->records_[i].name] = i;
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
    // Misaligned for its dtype: a copy is the safe choice.
    at::Tensor out = at::empty(rec.shape, options);
    std::memcpy(out.data_ptr(), ptr, rec.end - rec.begin);
    return out;
  }
  std::shared_ptr<void> keep = mapping_;
  return at::from_blob(const_cast<unsigned char*>(ptr), rec.shape, [keep](void*) mutable { keep.reset(); },
                       options);
}

std::map<std::string, at::Tensor> SafeTensorsFile::tensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& r : records_) out[r.name] = tensor(r.name);
  return out;
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  return SafeTensorsFile::open(path)->tensors();
}

}  // namespace a2a
