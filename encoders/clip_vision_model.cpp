#include "encoders/clip_vision_model.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "weights/config_reader.h"

namespace a2a {

CLIPVisionConfig CLIPVisionConfig::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "CLIP vision config"));
}

namespace {

void check_vision_config(const CLIPVisionConfig& c) {
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0) {
    throw_input_error("bad_config", "CLIP vision config: hidden_size " + std::to_string(c.hidden_size) +
                                        " must be a positive multiple of num_attention_heads " +
                                        std::to_string(c.num_attention_heads));
  }
  if (c.intermediate_size <= 0 || c.projection_dim <= 0 || c.num_channels <= 0 || c.num_hidden_layers < 0) {
    throw_input_error("bad_config",
                      "CLIP vision config: intermediate_size, projection_dim and num_channels must be positive and "
                      "num_hidden_layers non-negative");
  }
  if (c.patch_size <= 0 || c.image_size < c.patch_size) {
    throw_input_error("bad_config", "CLIP vision config: patch_size " + std::to_string(c.patch_size) +
                                        " must be positive and at most image_size " + std::to_string(c.image_size));
  }
  if (!(c.layer_norm_eps > 0.0)) throw_input_error("bad_config", "CLIP vision config: layer_norm_eps must be positive");
  check_clip_activation(c.hidden_act, "CLIP vision config");
}

}  // namespace

// Absent or null fields keep the defaults (get_or), as transformers' None does.
CLIPVisionConfig CLIPVisionConfig::from_config(const ConfigReader& root) {
  const nlohmann::json& json = root.json();
  const bool full_clip = json.contains("vision_config") && json["vision_config"].is_object();
  const ConfigReader r = full_clip ? root.child("vision_config") : root;
  CLIPVisionConfig c;
  if (full_clip) c.projection_dim = root.get_or("projection_dim", c.projection_dim);
  c.hidden_size = r.get_or("hidden_size", c.hidden_size);
  c.intermediate_size = r.get_or("intermediate_size", c.intermediate_size);
  c.projection_dim = r.get_or("projection_dim", c.projection_dim);
  c.num_hidden_layers = r.get_or("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = r.get_or("num_attention_heads", c.num_attention_heads);
  c.num_channels = r.get_or("num_channels", c.num_channels);
  c.image_size = r.get_or("image_size", c.image_size);
  c.patch_size = r.get_or("patch_size", c.patch_size);
  c.hidden_act = r.get_or("hidden_act", c.hidden_act);
  c.layer_norm_eps = r.get_or("layer_norm_eps", c.layer_norm_eps);
  c.attention_dropout = r.get_or("attention_dropout", c.attention_dropout);
  check_vision_config(c);
  return c;
}

nlohmann::json CLIPVisionConfig::to_json() const {
  return {{"model_type", "clip_vision_model"},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"projection_dim", projection_dim},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"num_channels", num_channels},
          {"image_size", image_size},
          {"patch_size", patch_size},
          {"hidden_act", hidden_act},
          {"layer_norm_eps", layer_norm_eps},
          {"attention_dropout", attention_dropout}};
}

CLIPVisionEmbeddingsImpl::CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& config)
    : patch_size(config.patch_size), grid(config.image_size / config.patch_size) {
  class_embedding = register_parameter("class_embedding", torch::randn({config.hidden_size}));
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(config.num_channels, config.hidden_size, config.patch_size)
                            .stride(config.patch_size)
                            .bias(false)));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(config.num_positions(), config.hidden_size));
}

at::Tensor CLIPVisionEmbeddingsImpl::forward(const at::Tensor& pixel_values) {
  const auto& weight = patch_embedding->weight;
  const int64_t channels = weight.size(1), positions = grid * grid + 1;
  const int64_t side = grid * patch_size;  // image_size in whole patches: what the conv reads
  // As the reference, a few extra rows or columns short of a patch are ignored by the strided conv.
  if (!pixel_values.defined() || pixel_values.dim() != 4 || pixel_values.size(1) != channels ||
      pixel_values.size(2) / patch_size != grid || pixel_values.size(3) / patch_size != grid) {
    throw_input_error("bad_shape", "CLIP vision model: pixel_values must be [batch, " + std::to_string(channels) +
                                       ", " + std::to_string(side) + ", " + std::to_string(side) + "], got " +
                                       (pixel_values.defined() ? c10::str(pixel_values.sizes()) : "none"));
  }
  const int64_t batch = pixel_values.size(0);
  auto patches = patch_embedding(pixel_values.to(weight.scalar_type())).flatten(2).transpose(1, 2);
  auto cls = class_embedding.view({1, 1, -1}).expand({batch, 1, -1});
  auto ids = torch::arange(positions, torch::TensorOptions().dtype(torch::kLong).device(weight.device()));
  return torch::cat({cls, patches}, 1) + position_embedding(ids).unsqueeze(0);
}

int64_t clip_hidden_layer_index(int64_t layer, int64_t num_hidden_layers) {
  const int64_t index = layer < 0 ? num_hidden_layers + 1 + layer : layer;
  return index < 0 || index > num_hidden_layers ? -1 : index;
}

CLIPVisionTransformerImpl::CLIPVisionTransformerImpl(const CLIPVisionConfig& c) : config(c) {
  auto norm = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps));
  };
  embeddings = register_module("embeddings", CLIPVisionEmbeddings(config));
  pre_layrnorm = register_module("pre_layrnorm", norm());
  encoder =
      register_module("encoder", CLIPEncoder(config.hidden_size, config.intermediate_size, config.num_attention_heads,
                                             config.num_hidden_layers, config.hidden_act, config.layer_norm_eps));
  post_layernorm = register_module("post_layernorm", norm());
}

// No attention mask and no causal mask: every patch attends to every other.
CLIPVisionOutput CLIPVisionTransformerImpl::forward(const at::Tensor& pixel_values, bool output_hidden_states) {
  CLIPVisionOutput out;
  auto hidden = pre_layrnorm(embeddings(pixel_values));
  auto layer_outputs = encoder->forward(hidden, at::Tensor(), /*causal=*/false);
  out.last_hidden_state = layer_outputs.empty() ? hidden : layer_outputs.back();
  out.pooler_output = post_layernorm(out.last_hidden_state.select(1, 0));
  if (output_hidden_states) {
    out.hidden_states.push_back(hidden);
    out.hidden_states.insert(out.hidden_states.end(), layer_outputs.begin(), layer_outputs.end());
  }
  return out;
}

at::Tensor CLIPVisionTransformerImpl::hidden_state(const at::Tensor& pixel_values, int64_t layer) {
  const int64_t index = clip_hidden_layer_index(layer, config.num_hidden_layers);
  if (index < 0) {
    throw_input_error("bad_hidden_layer", "CLIP vision model: hidden layer " + std::to_string(layer) + " outside -" +
                                              std::to_string(config.num_hidden_layers + 1) + ".." +
                                              std::to_string(config.num_hidden_layers) + " (" +
                                              std::to_string(config.num_hidden_layers) + " layers)");
  }
  auto hidden = pre_layrnorm(embeddings(pixel_values));
  if (index == 0) return hidden;
  return encoder->forward(hidden, at::Tensor(), /*causal=*/false, index).back();
}

CLIPVisionModelImpl::CLIPVisionModelImpl(const CLIPVisionConfig& config) {
  vision_model = register_module("vision_model", CLIPVisionTransformer(config));
}

CLIPVisionOutput CLIPVisionModelImpl::forward(const at::Tensor& pixel_values, bool output_hidden_states) {
  return vision_model(pixel_values, output_hidden_states);
}

CLIPVisionModelWithProjectionImpl::CLIPVisionModelWithProjectionImpl(const CLIPVisionConfig& config) {
  vision_model = register_module("vision_model", CLIPVisionTransformer(config));
  visual_projection = register_module(
      "visual_projection",
      torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.projection_dim).bias(false)));
}

CLIPVisionOutput CLIPVisionModelWithProjectionImpl::forward(const at::Tensor& pixel_values, bool output_hidden_states) {
  auto out = vision_model(pixel_values, output_hidden_states);
  out.image_embeds = visual_projection(out.pooler_output);
  return out;
}

const std::vector<std::string>& clip_model_text_keys() {
  static const std::vector<std::string> keys = {"text_model.*", "text_projection.weight", "logit_scale"};
  return keys;
}

}  // namespace a2a
