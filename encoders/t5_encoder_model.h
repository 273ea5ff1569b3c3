#pragma once
// The encoder of T5 and UMT5 (transformers' T5EncoderModel / UMT5EncoderModel, v4.43), named like the
// checkpoint: shared, encoder.block.N.layer.0.SelfAttention.q, encoder.block.N.layer.1.DenseReluDense.wi_0,
// encoder.final_layer_norm, ... FLAN-T5 is Tango's text encoder, umt5-xxl Wan 2.1's.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "nn/rms_norm.h"
#include "weights/state_dict.h"

namespace a2a {

class ConfigReader;

// Mirrors T5Config / UMT5Config (transformers 4.43); defaults are T5Config's, and UMT5Config's when
// model_type is "umt5" (umt5_defaults).
struct T5EncoderConfig {
  // "t5": only block 0 has a relative_attention_bias, and its bias is reused by every later block;
  // "umt5": every block has its own.
  std::string model_type = "t5";
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;  // per head; num_heads * d_kv need not equal d_model
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t num_heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.1;
  double layer_norm_epsilon = 1e-6;
  double initializer_factor = 1.0;
  // "relu", "gated-gelu", "gated-silu", ...: "gated-" selects wo(act(wi_0 x) · wi_1 x) over wo(act(wi x)).
  std::string feed_forward_proj = "relu";
  // Derived from feed_forward_proj as the reference does ("gated-gelu" means gelu_new, the tanh
  // approximation); explicit config.json values replace the derived ones, as PretrainedConfig's
  // leftover keyword arguments do.
  std::string dense_act_fn = "relu";
  bool is_gated_act = false;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  bool tie_word_embeddings = true;

  bool bias_in_every_block() const { return model_type == "umt5"; }
  int64_t inner_dim() const { return num_heads * d_kv; }

  static T5EncoderConfig umt5_defaults();
  static T5EncoderConfig from_json(const nlohmann::json& config);
  // The same from a reader whose errors name the file. Bad values raise "bad_config".
  static T5EncoderConfig from_config(const ConfigReader& config);
  void validate(const std::string& source = "") const;
};

// The bucket of each relative position (key position − query position), as the reference's
// _relative_position_bucket: exact buckets below max_exact, logarithmic ones (float32, truncated) up to
// max_distance, the last bucket beyond. Bidirectional (the encoder) gives each sign half of the buckets.
at::Tensor t5_relative_position_bucket(const at::Tensor& relative_position, bool bidirectional, int64_t num_buckets,
                                       int64_t max_distance);

class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5EncoderConfig& config, bool has_relative_attention_bias);
  // The bias of every query/key pair, [1, num_heads, query_length, key_length].
  at::Tensor compute_bias(int64_t query_length, int64_t key_length);
  // hidden [B, L, d_model]; position_bias: the additive bias with the padding mask in it, broadcastable
  // to [B, num_heads, L, L]. Scores are q·kᵀ without 1/√d_kv (folded into the initialisation upstream).
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& position_bias);

  int64_t num_heads, d_kv;
  int64_t num_buckets, max_distance;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  // [num_buckets, num_heads]; null without one
};
TORCH_MODULE(T5Attention);

// x + SelfAttention(layer_norm(x)).
class T5LayerSelfAttentionImpl : public torch::nn::Module {
 public:
  T5LayerSelfAttentionImpl(const T5EncoderConfig& config, bool has_relative_attention_bias);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& position_bias);

  T5Attention SelfAttention{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

// T5DenseGatedActDense (wi_0, wi_1, wo) when is_gated_act, else T5DenseActDense (wi, wo).
class T5DenseReluDenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseReluDenseImpl(const T5EncoderConfig& config);
  at::Tensor forward(const at::Tensor& hidden);

  std::string dense_act_fn;
  torch::nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(T5DenseReluDense);

// x + DenseReluDense(layer_norm(x)).
class T5LayerFFImpl : public torch::nn::Module {
 public:
  explicit T5LayerFFImpl(const T5EncoderConfig& config);
  at::Tensor forward(const at::Tensor& hidden);

  T5DenseReluDense DenseReluDense{nullptr};
  RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerFF);

// layer.0 = self-attention, layer.1 = feed-forward.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5EncoderConfig& config, bool has_relative_attention_bias);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& position_bias);

  T5LayerSelfAttentionImpl& self_attention() { return *self_attention_; }

  torch::nn::ModuleList layer{nullptr};

 private:
  T5LayerSelfAttention self_attention_{nullptr};  // layer[0] and layer[1], typed
  T5LayerFF feed_forward_{nullptr};
};
TORCH_MODULE(T5Block);

struct T5EncoderOutput {
  at::Tensor last_hidden_state;  // [B, L, d_model], after final_layer_norm
  // As the reference's hidden_states: [0] = embeddings, [i] = output of block i − 1, and the last one
  // after final_layer_norm (= last_hidden_state; the raw output of the last block is not kept).
  std::vector<at::Tensor> hidden_states;
};

// The encoder stack. embed_tokens is the model's `shared` embedding, not a module of its own (the
// reference ties them; checkpoints hold one of the two keys, see tie_t5_embeddings).
class T5StackImpl : public torch::nn::Module {
 public:
  T5StackImpl(const T5EncoderConfig& config, torch::nn::Embedding embed_tokens);
  T5EncoderOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, bool output_hidden_states);

  T5EncoderConfig config;
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList block{nullptr};
  RMSNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5Stack);

class T5EncoderModelImpl : public torch::nn::Module {
 public:
  explicit T5EncoderModelImpl(const T5EncoderConfig& config);
  // input_ids [B, L] int64; attention_mask [B, L] (1 = token, 0 = padding) or undefined (all tokens).
  // Padded query rows are computed too.
  T5EncoderOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                          bool output_hidden_states = false);

  const T5EncoderConfig& config() const { return encoder->config; }

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr};
};
TORCH_MODULE(T5EncoderModel);

// Checkpoints hold the tied embedding as shared.weight, encoder.embed_tokens.weight or both; this
// module holds shared.weight alone. Renames a lone encoder.embed_tokens.weight and drops it beside
// shared.weight ("weights_conversion" when the two differ in shape).
TensorMap tie_t5_embeddings(const TensorMap& tensors);

// Strict load options for a T5EncoderModel: tie_t5_embeddings, and the decoder and lm_head of a full
// T5ForConditionalGeneration checkpoint ignored as the reference's T5EncoderModel ignores them.
LoadOptions t5_encoder_load_options(const std::string& source = "");

// Reads a transformers folder (config.json + model.safetensors or its sharded index), or the
// `component` subfolder of a pipeline folder (Wan's "text_encoder"). The model is in eval mode on
// `device`, its floating-point weights in `dtype`.
T5EncoderModel load_t5_encoder(const std::string& path, const std::string& component = "",
                               const std::string& device = "cpu", at::ScalarType dtype = at::kFloat);

}  // namespace a2a
