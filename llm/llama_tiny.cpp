#include "llm/llama_tiny.h"

#include <torch/torch.h>

#include <cmath>

namespace a2a {

LlamaOptions tiny_llama_options(const TinyLlamaPreset& preset) {
  LlamaOptions o;
  o.vocab_size = 258;
  o.hidden_size = preset.hidden_size;
  o.intermediate_size = preset.hidden_size * 8 / 3;
  o.num_hidden_layers = preset.num_hidden_layers;
  o.num_attention_heads = preset.num_attention_heads;
  o.num_key_value_heads = preset.num_key_value_heads;
  o.max_position_embeddings = preset.max_position_embeddings;
  o.rms_norm_eps = 1e-5;
  o.tie_word_embeddings = true;
  o.bos_token_id = ByteTokenizer::kBos;
  o.eos_token_id = {ByteTokenizer::kEos};
  return o;
}

void initialize_tiny_llama_weights(torch::nn::Module& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (auto& p : model.named_parameters()) {
    at::Tensor& t = p.value();
    auto noise = at::randn(t.sizes(), generator, t.options().device(at::kCPU)).to(t.device());
    if (t.dim() >= 2) {
      t.copy_(noise / std::sqrt(static_cast<double>(t.size(1))));
    } else {
      t.copy_(1.0 + 0.1 * noise);  // every 1-d Llama parameter is a norm scale
    }
  }
}

}  // namespace a2a
