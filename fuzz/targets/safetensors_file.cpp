// A .safetensors file: the header length, the JSON header, dtypes, shapes and data offsets.
#include <ATen/ATen.h>

#include "fuzz/fuzz_target.h"
#include "weights/safetensors.h"

namespace a2a::fuzz {

namespace {

void safetensors_file(const Bytes& input) {
  auto file = SafeTensorsFile::open(scratch_file("model.safetensors", input));
  uint64_t previous_end = 0;
  for (const auto& r : file->records()) {
    fuzz_check(r.begin <= r.end && r.end <= file->data_bytes(), "a tensor's offsets leave the data block");
    fuzz_check(r.begin >= previous_end, "tensors overlap");
    previous_end = r.end;
    const size_t element = safetensors_dtype_size(r.dtype);
    if (element) fuzz_check(r.bytes() == uint64_t(r.numel()) * element, "a tensor's size disagrees with its shape");
    try {
      at::Tensor t = file->tensor(r.name);
      fuzz_check(t.numel() == r.numel(), "a view has another element count");
      if (t.numel() && t.is_floating_point()) t.to(at::kFloat).sum().item<float>();
    } catch (const Error&) {  // a dtype LibTorch lacks
    }
  }
  file->metadata();
}

std::vector<std::pair<std::string, Bytes>> safetensors_file_seeds() {
  const std::string path = scratch_folder() + "/seed.safetensors";
  std::vector<std::pair<std::string, Bytes>> seeds;
  save_safetensors(path,
                   {{"a.weight", at::arange(12, at::kFloat).reshape({3, 4})},
                    {"b.bias", at::ones({5}, at::kBFloat16)},
                    {"ids", at::arange(3, at::kLong)},
                    {"scalar", at::ones({}, at::kHalf)},
                    {"empty", at::zeros({0, 4})}},
                   {{"format", "pt"}});
  seeds.push_back({"valid.safetensors", read_bytes(path)});
  save_safetensors(path, {});
  seeds.push_back({"no_tensors.safetensors", read_bytes(path)});
  std::string header =
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  std::string overlap(8, '\0');
  overlap[0] = static_cast<char>(header.size());
  seeds.push_back({"overlap.safetensors", overlap + header + std::string(12, '\0')});
  seeds.push_back({"huge_header.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}"});
  return seeds;
}

}  // namespace

A2A_FUZZ_TARGET("safetensors_file",
                "a .safetensors file: header length, JSON header (nesting, dtypes, shapes, "
                "offsets, overlaps, __metadata__) and the mapped views of every tensor",
                safetensors_file, safetensors_file_seeds);

}  // namespace a2a::fuzz
