#pragma once
// CLIP's vision transformer (transformers' CLIPVisionModel / CLIPVisionModelWithProjection), named like
// the checkpoint: vision_model.embeddings.patch_embedding, vision_model.pre_layrnorm (sic),
// vision_model.encoder.layers.N..., vision_model.post_layernorm, visual_projection.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
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

// Mirrors CLIPVisionConfig (transformers 4.43); defaults are the constructor's.
struct CLIPVisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t projection_dim = 512;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  double attention_dropout = 0.0;

  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  int64_t num_positions() const { return num_patches() + 1; }  // the class token first

  // Reads a transformers config.json: a CLIPVisionConfig, or a CLIPConfig whose "vision_config" holds it.
  // Absent keys and null keep the defaults above. Older transformers wrote no projection_dim into a
  // CLIPConfig's vision_config; the top-level one is then used, which is what CLIPModel sizes its
  // visual_projection by (a checkpoint of CLIPModel loads as CLIPVisionModelWithProjection).
  static CLIPVisionConfig from_json(const nlohmann::json& config);
  static CLIPVisionConfig from_config(const ConfigReader& config);
  nlohmann::json to_json() const;
};

class CLIPVisionEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& config);
  // pixel_values [B, C, image_size, image_size] -> [B, 1 + patches, D]: the class embedding, then the
  // patches row by row, plus the position embeddings (positions 0..patches; the reference's position_ids
  // buffer is not persistent in 4.43 and is computed here).
  at::Tensor forward(const at::Tensor& pixel_values);

  int64_t patch_size, grid;  // grid = patches per side
  at::Tensor class_embedding;
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(CLIPVisionEmbeddings);

struct CLIPVisionOutput {
  at::Tensor last_hidden_state;  // [B, 1 + patches, D], the encoder output (before post_layernorm)
  at::Tensor pooler_output;      // [B, D], post_layernorm of the class token's state
  // hidden_states[0] = embeddings after pre_layrnorm, [i] = after layer i; filled when requested.
  std::vector<at::Tensor> hidden_states;
  at::Tensor image_embeds;  // [B, projection_dim]; WithProjection only
};

class CLIPVisionTransformerImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionTransformerImpl(const CLIPVisionConfig& config);
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);
  // hidden_states[layer] alone, running only the layers it needs; negative layers count from the end
  // (-1 = last_hidden_state, -2 = the penultimate layer LLaVA takes). Error "bad_hidden_layer" outside
  // [-(N + 1), N].
  at::Tensor hidden_state(const at::Tensor& pixel_values, int64_t layer);

  CLIPVisionConfig config;
  CLIPVisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(CLIPVisionTransformer);

// `layer` as an index into hidden_states (0..N) for a model of N layers, or -1 when it is outside
// [-(N + 1), N].
int64_t clip_hidden_layer_index(int64_t layer, int64_t num_hidden_layers);

class CLIPVisionModelImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionModelImpl(const CLIPVisionConfig& config);
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);

  CLIPVisionTransformer vision_model{nullptr};
};
TORCH_MODULE(CLIPVisionModel);

class CLIPVisionModelWithProjectionImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionModelWithProjectionImpl(const CLIPVisionConfig& config);
  // Also fills image_embeds = visual_projection(pooler_output).
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);

  CLIPVisionTransformer vision_model{nullptr};
  torch::nn::Linear visual_projection{nullptr};
};
TORCH_MODULE(CLIPVisionModelWithProjection);

// The keys of a full CLIPModel checkpoint that belong to its text tower and logit scale, which a vision
// model loaded from it leaves unused (patterns as in LoadOptions::ignored_unexpected).
const std::vector<std::string>& clip_model_text_keys();

}  // namespace a2a
