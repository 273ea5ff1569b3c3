#pragma once
// The tiny built-in Llama preset: a small random model (seeded) and a byte tokenizer, so that LLM
// pipelines run offline and fast when no weights are given. Its text has no meaning until trained.
#include <cstdint>
#include <memory>
#include <string>

#include "llm/llama.h"
#include "tokenizers/byte_tokenizer.h"

namespace a2a {

struct TinyLlamaPreset {
  int64_t hidden_size = 64;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t max_position_embeddings = 2048;
  uint64_t seed = 0;
};

LlamaOptions tiny_llama_options(const TinyLlamaPreset& preset);

// Weights as the reference fixtures draw them: N(0, 1/fan_in) for matrices and embedding tables,
// 1 + 0.1·N for norm scales; from a private generator so the global one is untouched.
void initialize_tiny_llama_weights(torch::nn::Module& model, uint64_t seed);

}  // namespace a2a
