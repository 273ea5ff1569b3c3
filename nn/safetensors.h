#pragma once
// Reading safetensors files: memory-mapped, validated against hostile headers, zero-copy views.
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
};

class SafeTensorsFile {
 public:
  // Maps and validates the file. Throws a2a::Error (kind Input, code "bad_safetensors") with the
  // file name and what is wrong.
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path);
  ~SafeTensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<TensorRecord>& records() const { return records_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const TensorRecord& record(const std::string& name) const;
  std::vector<std::string> names() const;

  // A CPU tensor viewing the mapped bytes (no copy); it keeps the mapping alive. Read-only in
  // spirit: writing to it is undefined (the mapping is private copy-on-write).
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
  std::shared_ptr<void> mapping_;  // unmaps when the last view dies
  const unsigned char* data_ = nullptr;
  uint64_t data_size_ = 0;
};

// Scalar type for a safetensors dtype string; throws for dtypes LibTorch 1.13 lacks.
at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype, const std::string& tensor_name,
                                           const std::string& file);
size_t safetensors_dtype_size(const std::string& dtype);  // 0 when unknown
std::string scalar_to_safetensors_dtype(at::ScalarType type);

// Convenience: every tensor of a file, as views.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

}  // namespace a2a
