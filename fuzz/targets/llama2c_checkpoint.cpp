// llama2.c's legacy .bin checkpoint: the seven header fields and the float arrays they promise.
#include <cstring>

#include "fuzz/fuzz_target.h"
#include "llm/llama2c.h"

namespace a2a::fuzz {

namespace {

void llama2c_checkpoint(const Bytes& input) {
  const std::string path = scratch_file("model.bin", input);
  const LlamaOptions options = read_llama2c_options(path);
  const Llama2cCheckpoint checkpoint = read_llama2c(path);
  fuzz_check(checkpoint.options.hidden_size == options.hidden_size, "the two readers disagree on the header");
  int64_t floats = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) floats += tensor.numel();
  fuzz_check(floats * 4 <= int64_t(input.size()), "more weights than the file holds");
}

Bytes llama2c_file(int32_t dim, int32_t hidden, int32_t layers, int32_t heads, int32_t kv_heads, int32_t vocab,
                   int32_t seq_len) {
  const int32_t header[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq_len};
  Bytes out(reinterpret_cast<const char*>(header), sizeof(header));
  const int64_t head_size = dim / heads, kv_dim = kv_heads * head_size, v = vocab < 0 ? -vocab : vocab;
  const int64_t floats = v * dim + layers * (2 * dim + 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * hidden) + dim +
                         seq_len * head_size + (vocab > 0 ? 0 : v * dim);
  for (int64_t i = 0; i < floats; ++i) {
    float f = 0.01f * static_cast<float>(i % 97);
    out.append(reinterpret_cast<const char*>(&f), 4);
  }
  return out;
}

std::vector<std::pair<std::string, Bytes>> llama2c_checkpoint_seeds() {
  Bytes overflow = llama2c_file(8, 16, 1, 2, 2, 32, 4).substr(0, 28);
  const int32_t huge[7] = {1 << 20, 1 << 20, 4096, 1, 1, 1 << 24, 1 << 24};
  overflow.replace(0, 28, reinterpret_cast<const char*>(huge), 28);
  return {{"tied.bin", llama2c_file(8, 16, 1, 2, 2, 32, 4)},
          {"untied_gqa.bin", llama2c_file(8, 12, 2, 4, 2, -16, 3)},
          {"truncated.bin", llama2c_file(8, 16, 1, 2, 2, 32, 4).substr(0, 100)},
          {"overflow.bin", overflow}};
}

}  // namespace

A2A_FUZZ_TARGET("llama2c_checkpoint",
                "llama2.c .bin checkpoints: header fields, the size sum against the file, "
                "tied and untied classifiers, GQA head counts",
                llama2c_checkpoint, llama2c_checkpoint_seeds);

}  // namespace a2a::fuzz
