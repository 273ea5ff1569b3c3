#pragma once
// CLIP's text transformer (transformers' CLIPTextModel / CLIPTextModelWithProjection), named like the
// checkpoint: text_model.embeddings.token_embedding, text_model.encoder.layers.N.self_attn.q_proj, ...
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "encoders/clip_encoder.h"

namespace a2a {

class ConfigReader;

// Mirrors CLIPTextConfig (transformers 4.43); defaults are the constructor's.
struct CLIPTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t projection_dim = 512;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  double attention_dropout = 0.0;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 49406;
  int64_t eos_token_id = 49407;

  // Reads a transformers config.json (CLIPTextConfig, or a CLIPConfig whose "text_config" holds it).
  // Absent keys and null keep the defaults above.
  static CLIPTextConfig from_json(const nlohmann::json& config);
  // The same from a reader whose errors name the file (not a from_json overload: a braced JSON
  // literal argument would be ambiguous between the two).
  static CLIPTextConfig from_config(const ConfigReader& config);
  nlohmann::json to_json() const;
};

class CLIPTextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit CLIPTextEmbeddingsImpl(const CLIPTextConfig& config);
  // input_ids [B, L] -> [B, L, D]. Positions are 0..L-1 (the position_ids buffer of the reference
  // is not persistent in 4.43 and is computed here).
  at::Tensor forward(const at::Tensor& input_ids);

  torch::nn::Embedding token_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(CLIPTextEmbeddings);

struct CLIPTextOutput {
  at::Tensor last_hidden_state;  // [B, L, D], after final_layer_norm
  at::Tensor pooler_output;      // [B, D], last_hidden_state at the end-of-text position
  // hidden_states[0] = embeddings, [i] = after layer i (no final_layer_norm); filled when requested.
  std::vector<at::Tensor> hidden_states;
  at::Tensor text_embeds;  // [B, projection_dim]; WithProjection only
};

class CLIPTextTransformerImpl : public torch::nn::Module {
 public:
  explicit CLIPTextTransformerImpl(const CLIPTextConfig& config);
  // input_ids [B, L] int64; attention_mask [B, L] (1 = token, 0 = padding) or undefined (Stable
  // Diffusion passes none: only the causal mask applies).
  CLIPTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                         bool output_hidden_states = false);

  // The end-of-text position per row. eos_token_id == 2 is the legacy rule of old configs (the
  // position of the largest id, which is <|endoftext|> in CLIP's vocabulary); otherwise the first
  // position equal to eos_token_id.
  at::Tensor eos_positions(const at::Tensor& input_ids) const;

  CLIPTextConfig config;
  CLIPTextEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(CLIPTextTransformer);

class CLIPTextModelImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelImpl(const CLIPTextConfig& config);
  CLIPTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                         bool output_hidden_states = false);

  CLIPTextTransformer text_model{nullptr};
};
TORCH_MODULE(CLIPTextModel);

class CLIPTextModelWithProjectionImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelWithProjectionImpl(const CLIPTextConfig& config);
  // Also fills text_embeds = text_projection(pooler_output).
  CLIPTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                         bool output_hidden_states = false);

  CLIPTextTransformer text_model{nullptr};
  torch::nn::Linear text_projection{nullptr};
};
TORCH_MODULE(CLIPTextModelWithProjection);

// The prompt embedding diffusers' pipelines feed the denoiser: clip_skip = 0 gives last_hidden_state;
// clip_skip = k > 0 takes the output of layer N-k and applies final_layer_norm to it (as diffusers'
// encode_prompt does with hidden_states[-(k + 1)]). Runs only the layers needed.
at::Tensor clip_prompt_embedding(CLIPTextTransformerImpl& text_model, const at::Tensor& input_ids, int64_t clip_skip,
                                 const at::Tensor& attention_mask = {});

}  // namespace a2a
