#pragma once
// The tiny built-in Llama preset: a small random model (seeded) and a byte tokenizer, so that LLM
// pipelines run offline and fast when no weights are given. Its text has no meaning until trained.
#include <cstdint>
#include <memory>
#include <string>

#include "nn/llama.h"
#include "nn/tokenizer.h"
#include "nn/tokenizers/added_tokens.h"

namespace a2a {

// Ids 0..255 are the UTF-8 bytes of the text, 256 = BOS, 257 = EOS; added tokens follow from 258.
class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int64_t kBos = 256;
  static constexpr int64_t kEos = 257;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override { return 258 + static_cast<int64_t>(added_.tokens().size()); }
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  std::optional<int64_t> bos_id() const override { return kBos; }
  std::optional<int64_t> eos_id() const override { return kEos; }
  std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) override;

 private:
  tokenizers::AddedTokens added_;
};

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
