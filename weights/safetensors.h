#pragma once
// Reading and writing safetensors files: memory-mapped, validated against hostile headers,
// zero-copy views; sharded checkpoints through their `*.safetensors.index.json`.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data block with tensors back to back.
#include <ATen/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace a2a {

struct TensorRecord {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data block
  uint64_t end = 0;
  uint64_t bytes() const { return end - begin; }
  int64_t numel() const;
};

class SafeTensorsFile {
 public:
  // Maps and validates the file. Throws a2a::Error (kind Input, code "bad_safetensors") with the
  // file name and what is wrong. Nothing but the header is read: the data stays on disk until a
  // view of it is touched.
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path);
  ~SafeTensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<TensorRecord>& records() const { return records_; }  // in data order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const TensorRecord& record(const std::string& name) const;
  std::vector<std::string> names() const;

  // A CPU tensor viewing the mapped bytes (no copy); it keeps the mapping alive after the file
  // object is gone. The mapping is private: writing to a view changes only this process's copy.
  // Dtypes LibTorch 1.13 lacks (F8_*, U16, ...) raise an error naming the tensor.
  at::Tensor tensor(const std::string& name) const;
  // Every tensor, as views.
  std::map<std::string, at::Tensor> tensors() const;

  uint64_t data_bytes() const { return data_size_; }

 private:
  SafeTensorsFile() = default;
  std::string path_;
  std::vector<TensorRecord> records_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<void> mapping_;  // unmaps when the file object and the last view are gone
  const unsigned char* data_ = nullptr;
  uint64_t data_size_ = 0;
};

// One checkpoint that may be split over several files: a single `.safetensors` file, or a
// `*.safetensors.index.json` with {"metadata": {...}, "weight_map": {"tensor": "shard file"}}.
// The index must agree with its shards exactly: every listed tensor is in the shard it names, and
// every tensor of a shard is listed (code "bad_safetensors_index" otherwise).
class SafeTensorsCheckpoint {
 public:
  static std::shared_ptr<SafeTensorsCheckpoint> open(const std::string& path);

  const std::string& path() const { return path_; }  // the file or the index
  bool sharded() const { return sharded_; }
  const std::vector<std::shared_ptr<SafeTensorsFile>>& files() const { return files_; }
  // Every tensor, shard by shard in data order.
  std::vector<TensorRecord> records() const;
  // The file that holds a tensor; throws "missing_tensor" when there is none.
  const SafeTensorsFile& file_of(const std::string& name) const;
  bool contains(const std::string& name) const { return owner_.count(name) > 0; }
  at::Tensor tensor(const std::string& name) const { return file_of(name).tensor(name); }
  std::map<std::string, at::Tensor> tensors() const;
  // The single file's __metadata__, or the first shard's for a sharded checkpoint.
  std::map<std::string, std::string> metadata() const;
  // The index's own "metadata" object rendered as strings (total_size, ...); empty when unsharded.
  const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }
  uint64_t data_bytes() const;

 private:
  SafeTensorsCheckpoint() = default;
  std::string path_;
  bool sharded_ = false;
  std::vector<std::shared_ptr<SafeTensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
  std::map<std::string, std::string> index_metadata_;
};

// Scalar type for a safetensors dtype string; throws for dtypes LibTorch 1.13 lacks.
at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype, const std::string& tensor_name,
                                           const std::string& file);
size_t safetensors_dtype_size(const std::string& dtype);  // 0 when unknown
std::string scalar_to_safetensors_dtype(at::ScalarType type);
// Whether `tensor` is a view of a mapped safetensors file (made by SafeTensorsFile::tensor).
bool is_mapped_view(const at::Tensor& tensor);
// Lets the kernel drop the resident pages under a mapped view; they are read back from the file
// when touched again. Keeps peak memory at one copy while loading into a module. Only for views
// nobody wrote to: the private mapping would lose those writes. Returns false for other tensors.
bool release_mapped_pages(const at::Tensor& view);
// The non-destructive form: asks the kernel to page the view's pages out (MADV_PAGEOUT), which
// keeps anything written to them. Best effort: the kernel may keep pages of files the process does
// not own. Returns false for tensors that are not mapped views.
bool page_out_mapped_pages(const at::Tensor& view);

// Every tensor of a `.safetensors` file or a sharded index, as views.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

// Writes the official layout (header padded with spaces to a multiple of 8, tensors ordered by
// alignment then name so every tensor is aligned for its dtype) atomically: a temporary file in
// the same folder, synced, then renamed over `path`. Tensors may be on any device and
// non-contiguous; each is copied to the CPU on its own, never all at once.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Writes `<base>-00001-of-0000N.safetensors` shards of at most `max_shard_bytes` (a larger tensor
// gets a shard of its own) and `<base>.safetensors.index.json` into `folder`; returns the index
// path. With a single shard it still writes the index, as `save_pretrained` does when asked.
std::string save_safetensors_sharded(const std::string& folder, const std::string& base,
                                     const std::map<std::string, at::Tensor>& tensors, uint64_t max_shard_bytes,
                                     const std::map<std::string, std::string>& metadata = {});

}  // namespace a2a
