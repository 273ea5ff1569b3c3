#pragma once
// llama2.c's legacy .bin checkpoint (karpathy/llama2.c, export.py legacy_export / run.c): seven int32
// header fields (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then float32
// arrays. A positive vocab_size means the classifier shares the token embedding.
#include <ATen/Tensor.h>

#include <string>

#include "llm/llama.h"
#include "weights/state_dict.h"

namespace a2a {

struct Llama2cCheckpoint {
  LlamaOptions options;  // rms eps 1e-5, rope theta 10000, tied when vocab_size > 0, BOS 1, EOS 2
  TensorMap tensors;     // under transformers' names, q/k rows already in transformers' rotary layout
};

// Throws a2a::Error (input, "bad_llama2c") naming the file and what does not add up.
Llama2cCheckpoint read_llama2c(const std::string& path);

// The options the header describes, checked as read_llama2c checks them (the file's size included),
// without reading the weights.
LlamaOptions read_llama2c_options(const std::string& path);

// llama2.c rotates interleaved pairs (2i, 2i+1) inside each head; transformers rotates (i, i + d/2).
// Reorders the output rows of a q or k projection [heads * head_size, in] from the first layout to the
// second, so the canonical model computes the same attention.
at::Tensor llama2c_rotary_rows_to_transformers(const at::Tensor& weight, int64_t heads);

}  // namespace a2a
