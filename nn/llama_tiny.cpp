#include "nn/llama_tiny.h"

#include <torch/torch.h>

#include <cmath>

#include "nn/tokenizers/unicode.h"

namespace a2a {

std::vector<int64_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    for (size_t i = segment.begin; i < segment.end; ++i) ids.push_back(static_cast<unsigned char>(text[i]));
  }
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  for (auto id : ids) {
    if (id >= 0 && id < 256) {
      out += static_cast<char>(id);
    } else if (const auto* token = added_.find(id); token && !(skip_special && token->special)) {
      out += token->content;
    }
  }
  // Random weights emit arbitrary bytes: keep the text valid UTF-8.
  return unicode::sanitize_utf8(out);
}

std::string ByteTokenizer::token_text(int64_t id) const { return decode({id}); }

std::optional<int64_t> ByteTokenizer::token_to_id(const std::string& token) const {
  if (const auto* added = added_.find(token)) return added->id;
  if (token.size() == 1) return static_cast<unsigned char>(token[0]);
  return std::nullopt;
}

std::vector<int64_t> ByteTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<int64_t> ids;
  for (const auto& content : tokens) {
    if (const auto* existing = added_.find(content)) {
      ids.push_back(existing->id);
      continue;
    }
    tokenizers::AddedToken token;
    token.content = content;
    token.id = vocab_size();
    added_.add(token);
    ids.push_back(token.id);
  }
  return ids;
}

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
