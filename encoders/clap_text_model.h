#pragma once
// CLAP's text tower (transformers 4.43 ClapTextModelWithProjection): a RoBERTa encoder and a two-layer
// projection, named like the checkpoint: text_model.embeddings.word_embeddings,
// text_model.encoder.layer.N.attention.self.query, text_model.pooler.dense, text_projection.linear1, ...
// AudioLDM conditions its UNet on the L2-normalised text_embeds.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace a2a {

class ConfigReader;

// Mirrors ClapTextConfig (transformers 4.43); defaults are the constructor's.
struct ClapTextConfig {
  int64_t vocab_size = 50265;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 514;
  int64_t type_vocab_size = 1;
  double initializer_factor = 1.0;
  double layer_norm_eps = 1e-12;
  int64_t projection_dim = 512;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 2;
  std::string position_embedding_type = "absolute";
  bool use_cache = true;
  std::string projection_hidden_act = "relu";

  // Reads a transformers config.json (ClapTextConfig, or a ClapConfig whose "text_config" holds it).
  static ClapTextConfig from_json(const nlohmann::json& config);
  // The same from a reader whose errors name the file (not a from_json overload: a braced JSON
  // literal argument would be ambiguous between the two).
  static ClapTextConfig from_config(const ConfigReader& config);
};

// RoBERTa's position ids: padding_idx + running count of non-pad tokens, padding_idx on pads.
at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx);

class ClapTextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClapTextEmbeddingsImpl(const ClapTextConfig& config);
  // input_ids [B, L] -> [B, L, D]; token types are all 0 (the buffer's values).
  at::Tensor forward(const at::Tensor& input_ids);

  int64_t padding_idx;
  // Persistent buffers of the reference (arange / zeros); checkpoints carry them.
  at::Tensor position_ids, token_type_ids;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(ClapTextEmbeddings);

class ClapTextSelfAttentionImpl : public torch::nn::Module {
 public:
  ClapTextSelfAttentionImpl(int64_t hidden_size, int64_t num_heads);
  // additive_mask [B, 1, 1, L] or undefined.
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& additive_mask);

  int64_t num_heads;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(ClapTextSelfAttention);

// Post-norm residual: LayerNorm(dense(x) + input).
class ClapTextResidualOutputImpl : public torch::nn::Module {
 public:
  ClapTextResidualOutputImpl(int64_t in_features, int64_t hidden_size, double layer_norm_eps);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& input);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(ClapTextResidualOutput);

class ClapTextAttentionImpl : public torch::nn::Module {
 public:
  explicit ClapTextAttentionImpl(const ClapTextConfig& config);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& additive_mask);

  ClapTextSelfAttention self{nullptr};
  ClapTextResidualOutput output{nullptr};
};
TORCH_MODULE(ClapTextAttention);

class ClapTextIntermediateImpl : public torch::nn::Module {
 public:
  explicit ClapTextIntermediateImpl(const ClapTextConfig& config);
  at::Tensor forward(const at::Tensor& hidden);

  std::string hidden_act;
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(ClapTextIntermediate);

class ClapTextLayerImpl : public torch::nn::Module {
 public:
  explicit ClapTextLayerImpl(const ClapTextConfig& config);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& additive_mask);

  ClapTextAttention attention{nullptr};
  ClapTextIntermediate intermediate{nullptr};
  ClapTextResidualOutput output{nullptr};
};
TORCH_MODULE(ClapTextLayer);

class ClapTextEncoderImpl : public torch::nn::Module {
 public:
  explicit ClapTextEncoderImpl(const ClapTextConfig& config);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& additive_mask);

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(ClapTextEncoder);

// tanh(dense(first token)).
class ClapTextPoolerImpl : public torch::nn::Module {
 public:
  explicit ClapTextPoolerImpl(int64_t hidden_size);
  at::Tensor forward(const at::Tensor& last_hidden_state);

  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(ClapTextPooler);

struct ClapTextOutput {
  at::Tensor last_hidden_state;  // [B, L, D]
  at::Tensor pooler_output;      // [B, D]
  at::Tensor text_embeds;        // [B, projection_dim], not normalised; WithProjection only
};

class ClapTextModelImpl : public torch::nn::Module {
 public:
  explicit ClapTextModelImpl(const ClapTextConfig& config);
  // input_ids [B, L] int64; attention_mask [B, L] (1 = token, 0 = padding) or undefined (all tokens).
  ClapTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {});

  ClapTextConfig config;
  ClapTextEmbeddings embeddings{nullptr};
  ClapTextEncoder encoder{nullptr};
  ClapTextPooler pooler{nullptr};
};
TORCH_MODULE(ClapTextModel);

// linear2(act(linear1(x))).
class ClapProjectionLayerImpl : public torch::nn::Module {
 public:
  ClapProjectionLayerImpl(int64_t hidden_size, int64_t projection_dim, std::string hidden_act);
  at::Tensor forward(const at::Tensor& hidden);

  std::string hidden_act;
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
};
TORCH_MODULE(ClapProjectionLayer);

class ClapTextModelWithProjectionImpl : public torch::nn::Module {
 public:
  explicit ClapTextModelWithProjectionImpl(const ClapTextConfig& config);
  // Also fills text_embeds = text_projection(pooler_output).
  ClapTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {});

  ClapTextModel text_model{nullptr};
  ClapProjectionLayer text_projection{nullptr};
};
TORCH_MODULE(ClapTextModelWithProjection);

}  // namespace a2a
