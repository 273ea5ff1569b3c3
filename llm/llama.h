#pragma once
// Llama causal language model (transformers' LlamaForCausalLM, v4.43): RMSNorm, rotary embeddings with
// linear and Llama-3 scaling, grouped-query attention, SwiGLU MLP, tied or untied classifier, and a
// preallocated KV cache for prefill + one-token decode steps.
//
// Submodules carry the checkpoint's names (model.embed_tokens, model.layers.N.self_attn.q_proj, lm_head),
// so a transformers checkpoint loads without renaming.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/rms_norm.h"
#include "weights/state_dict.h"

namespace a2a {

class ConfigReader;

// config.json "rope_scaling". "type" is the older spelling of "rope_type".
struct LlamaRopeScaling {
  std::string rope_type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

// Mirrors transformers' LlamaConfig field for field; defaults are the constructor's defaults.
struct LlamaOptions {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // config.json null -> num_attention_heads
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 2048;
  double initializer_range = 0.02;
  double rms_norm_eps = 1e-6;
  bool use_cache = true;
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id = 1;
  std::vector<int64_t> eos_token_id = {2};  // an int or a list in config.json
  int64_t pretraining_tp = 1;
  bool tie_word_embeddings = false;
  double rope_theta = 10000.0;
  std::optional<LlamaRopeScaling> rope_scaling;
  bool attention_bias = false;
  double attention_dropout = 0.0;
  bool mlp_bias = false;
  std::optional<int64_t> head_dim;  // absent in v4.43 configs: hidden_size / num_attention_heads

  static LlamaOptions from_json(const nlohmann::json& config);
  static LlamaOptions from_config(const ConfigReader& config);
  nlohmann::json to_json() const;
  int64_t head_size() const { return head_dim ? *head_dim : hidden_size / num_attention_heads; }
  // Throws a2a::Error (input) naming the inconsistent fields.
  void validate(const std::string& source = "") const;
};

// Inverse rotary frequencies [head_size/2] (float32) for the configured rope type, as transformers'
// ROPE_INIT_FUNCTIONS compute them, and the attention scaling applied to cos/sin (1 for these types).
at::Tensor llama_rope_inverse_frequencies(const LlamaOptions& options);

// Preallocated keys and values of every layer: [B, kv_heads, capacity, head_size]. A prefill writes
// L positions at once, each decode step one; attention reads the filled prefix only, so a decode
// step costs time linear in the context.
class LlamaKVCache {
 public:
  LlamaKVCache() = default;
  LlamaKVCache(const LlamaOptions& options, int64_t batch, int64_t capacity, const at::TensorOptions& tensor_options);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t batch() const { return batch_; }
  bool empty() const { return keys_.empty(); }
  // Writes the new keys/values [B, kv_heads, L, head_size] of `layer` at [length, length + L) and
  // returns views of [0, length + L). Throws a2a::Error (input, "context_overflow") past capacity.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& keys, const at::Tensor& values);
  // Marks L more positions as filled (after every layer appended them).
  void advance(int64_t count);
  // Forgets positions from `length` on (the storage stays allocated).
  void truncate(int64_t length);

 private:
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t batch_ = 0;
};

using LlamaRMSNorm = RMSNorm;

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const LlamaOptions& options);
  // hidden [B, L, hidden]; cos/sin [B, L, head_size]; mask: additive [B, 1, L, Lk] or undefined
  // (then plain causal attention over the cache prefix).
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     LlamaKVCache* cache, int64_t layer_index);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t num_heads, num_key_value_heads, head_size;
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const LlamaOptions& options);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const LlamaOptions& options);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     LlamaKVCache* cache, int64_t layer_index);
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  LlamaRMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

struct LlamaOutput {
  at::Tensor logits;             // [B, L, vocab], or [B, 1, vocab] with last_logits_only
  at::Tensor last_hidden_state;  // [B, L, hidden], after the final norm
  // With output_hidden_states, as transformers returns them: the input embeddings, the output of
  // layers 0..N-2, and the final-normed output of the last layer (N + 1 entries).
  std::vector<at::Tensor> hidden_states;
};

struct LlamaForwardOptions {
  // [B, past + L] of 1 (attend) / 0 (padding), covering the cached positions and the new ones.
  // Undefined: no padding. Positions then follow from it (cumsum - 1), as transformers' generate does.
  at::Tensor attention_mask;
  LlamaKVCache* cache = nullptr;  // nullptr: no cache, the call sees only its own positions
  bool output_hidden_states = false;
  bool last_logits_only = false;  // decoding needs only the last position's logits
};

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const LlamaOptions& options);
  LlamaOutput forward(const at::Tensor& inputs_embeds, const LlamaForwardOptions& call);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  LlamaRMSNorm norm{nullptr};
  LlamaOptions options;
  at::Tensor inv_freq;  // not a buffer: transformers does not save it
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  explicit LlamaForCausalLMImpl(const LlamaOptions& options);

  // input_ids [B, L] -> logits [B, L, vocab] (no cache, no padding).
  at::Tensor forward(const at::Tensor& input_ids);
  LlamaOutput forward_embeds(const at::Tensor& inputs_embeds, const LlamaForwardOptions& call = {});
  LlamaOutput forward_ids(const at::Tensor& input_ids, const LlamaForwardOptions& call = {});
  at::Tensor embed(const at::Tensor& input_ids);
  at::Tensor classifier_weight();  // lm_head.weight, or the embedding matrix when tied
  LlamaKVCache new_cache(int64_t batch, int64_t capacity);

  // Grows the vocabulary to new_vocab_size rows (embedding and classifier). New rows are the mean of
  // the existing rows, so a new token starts as an "average" token and is not favoured by the classifier.
  void resize_token_embeddings(int64_t new_vocab_size);

  const LlamaOptions& options() const { return model->options; }

  LlamaModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // absent (nullptr) when tie_word_embeddings
};
TORCH_MODULE(LlamaForCausalLM);

// Expands a transformers checkpoint's tensors to what this module holds: drops lm_head.weight when
// tied. Returns the load options (ignored keys, source name).
LoadOptions llama_load_options(const LlamaOptions& options, const std::string& source);

struct LoadedLlama {
  LlamaOptions options;
  LlamaForCausalLM model{nullptr};
  std::string format;  // "transformers" or "llama2c"
};

// Reads a model from a transformers folder (config.json + model.safetensors, or sharded with
// model.safetensors.index.json) or a llama2.c .bin file. When lora_adapter is a PEFT adapter folder its
// weights are merged at load. The model is in eval mode on `device`, its weights in `dtype` (converted as
// they are copied in, so no float32 copy of a half-precision checkpoint is made).
LoadedLlama load_llama(const std::string& path, const std::string& device = "cpu", const std::string& lora_adapter = "",
                       at::ScalarType dtype = at::kFloat);

// Reads the tensors of a transformers folder (single or sharded safetensors).
TensorMap read_transformers_weights(const std::string& folder);

}  // namespace a2a
