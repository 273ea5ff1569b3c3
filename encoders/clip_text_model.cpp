#include "encoders/clip_text_model.h"

#include <torch/torch.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "weights/config_reader.h"

namespace a2a {

CLIPTextConfig CLIPTextConfig::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "CLIP text config"));
}

// Absent or null fields keep the defaults (get_or), as transformers' None does.
CLIPTextConfig CLIPTextConfig::from_config(const ConfigReader& root) {
  const nlohmann::json& json = root.json();
  const ConfigReader r =
      json.contains("text_config") && json["text_config"].is_object() ? root.child("text_config") : root;
  CLIPTextConfig c;
  c.vocab_size = r.get_or("vocab_size", c.vocab_size);
  c.hidden_size = r.get_or("hidden_size", c.hidden_size);
  c.intermediate_size = r.get_or("intermediate_size", c.intermediate_size);
  c.projection_dim = r.get_or("projection_dim", c.projection_dim);
  c.num_hidden_layers = r.get_or("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = r.get_or("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = r.get_or("max_position_embeddings", c.max_position_embeddings);
  c.hidden_act = r.get_or("hidden_act", c.hidden_act);
  c.layer_norm_eps = r.get_or("layer_norm_eps", c.layer_norm_eps);
  c.attention_dropout = r.get_or("attention_dropout", c.attention_dropout);
  c.pad_token_id = r.get_or("pad_token_id", c.pad_token_id);
  c.bos_token_id = r.get_or("bos_token_id", c.bos_token_id);
  c.eos_token_id = r.get_or("eos_token_id", c.eos_token_id);
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0) {
    throw_input_error("bad_config", "CLIP text config: hidden_size " + std::to_string(c.hidden_size) +
                                        " must be a positive multiple of num_attention_heads " +
                                        std::to_string(c.num_attention_heads));
  }
  if (c.vocab_size <= 0 || c.max_position_embeddings <= 0 || c.num_hidden_layers < 0 || c.intermediate_size <= 0) {
    throw_input_error("bad_config",
                      "CLIP text config: vocab_size, max_position_embeddings and intermediate_size "
                      "must be positive and num_hidden_layers non-negative");
  }
  check_clip_activation(c.hidden_act, "CLIP text config");
  return c;
}

nlohmann::json CLIPTextConfig::to_json() const {
  return {{"model_type", "clip_text_model"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"projection_dim", projection_dim},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"max_position_embeddings", max_position_embeddings},
          {"hidden_act", hidden_act},
          {"layer_norm_eps", layer_norm_eps},
          {"attention_dropout", attention_dropout},
          {"pad_token_id", pad_token_id},
          {"bos_token_id", bos_token_id},
          {"eos_token_id", eos_token_id}};
}

CLIPTextEmbeddingsImpl::CLIPTextEmbeddingsImpl(const CLIPTextConfig& config) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(config.max_position_embeddings, config.hidden_size));
}

at::Tensor CLIPTextEmbeddingsImpl::forward(const at::Tensor& input_ids) {
  const int64_t length = input_ids.size(1);
  const int64_t max_positions = position_embedding->weight.size(0);
  if (length > max_positions) {
    throw_input_error("sequence_too_long", "CLIP text model: " + std::to_string(length) +
                                               " tokens exceed max_position_embeddings " +
                                               std::to_string(max_positions));
  }
  const int64_t vocab = token_embedding->weight.size(0);
  if (input_ids.numel() > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab) {
      throw_input_error("token_out_of_range", "CLIP text model: token id " + std::to_string(lo < 0 ? lo : hi) +
                                                  " outside the vocabulary of " + std::to_string(vocab));
    }
  }
  auto positions = torch::arange(length, input_ids.options().dtype(torch::kLong));
  return token_embedding(input_ids) + position_embedding(positions).unsqueeze(0);
}

namespace {

void check_input_ids(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  if (!input_ids.defined() || input_ids.dim() != 2) {
    throw_input_error("bad_shape", "CLIP text model: input_ids must be [batch, length]");
  }
  if (input_ids.scalar_type() != torch::kLong && input_ids.scalar_type() != torch::kInt) {
    throw_input_error("bad_dtype", "CLIP text model: input_ids must hold integer token ids");
  }
  if (attention_mask.defined() && attention_mask.sizes() != input_ids.sizes()) {
    throw_input_error("bad_shape", "CLIP text model: attention_mask must have the shape of input_ids");
  }
}

// [B, L] 1/0 padding mask -> additive [B, 1, 1, L]. The lowest finite float (as transformers uses)
// keeps a fully padded row finite. float32 whatever the model's dtype: attention adds it to float32 scores.
at::Tensor additive_padding_mask(const at::Tensor& attention_mask, const at::TensorOptions& options) {
  if (!attention_mask.defined()) return {};
  auto keep = attention_mask.to(options.dtype(at::kFloat)).view({attention_mask.size(0), 1, 1, attention_mask.size(1)});
  return (1.0 - keep) * std::numeric_limits<float>::lowest();
}

}  // namespace

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const CLIPTextConfig& c) : config(c) {
  embeddings = register_module("embeddings", CLIPTextEmbeddings(config));
  encoder =
      register_module("encoder", CLIPEncoder(config.hidden_size, config.intermediate_size, config.num_attention_heads,
                                             config.num_hidden_layers, config.hidden_act, config.layer_norm_eps));
  final_layer_norm = register_module(
      "final_layer_norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

at::Tensor CLIPTextTransformerImpl::eos_positions(const at::Tensor& input_ids) const {
  auto ids = input_ids.to(torch::kLong);
  if (config.eos_token_id == 2) return ids.argmax(-1);
  return (ids == config.eos_token_id).to(torch::kInt).argmax(-1);
}

CLIPTextOutput CLIPTextTransformerImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                                bool output_hidden_states) {
  check_input_ids(input_ids, attention_mask);
  auto ids = input_ids.to(torch::kLong);
  CLIPTextOutput out;
  auto hidden = embeddings(ids);
  auto mask = additive_padding_mask(attention_mask, hidden.options());
  auto layer_outputs = encoder(hidden, mask, /*causal=*/true);
  auto last = layer_outputs.empty() ? hidden : layer_outputs.back();
  out.last_hidden_state = final_layer_norm(last);
  auto rows = torch::arange(ids.size(0), ids.options());
  out.pooler_output = out.last_hidden_state.index({rows, eos_positions(ids)});
  if (output_hidden_states) {
    out.hidden_states.push_back(hidden);
    out.hidden_states.insert(out.hidden_states.end(), layer_outputs.begin(), layer_outputs.end());
  }
  return out;
}

CLIPTextModelImpl::CLIPTextModelImpl(const CLIPTextConfig& config) {
  text_model = register_module("text_model", CLIPTextTransformer(config));
}

CLIPTextOutput CLIPTextModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                          bool output_hidden_states) {
  return text_model(input_ids, attention_mask, output_hidden_states);
}

CLIPTextModelWithProjectionImpl::CLIPTextModelWithProjectionImpl(const CLIPTextConfig& config) {
  text_model = register_module("text_model", CLIPTextTransformer(config));
  text_projection = register_module(
      "text_projection",
      torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.projection_dim).bias(false)));
}

CLIPTextOutput CLIPTextModelWithProjectionImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                                        bool output_hidden_states) {
  auto out = text_model(input_ids, attention_mask, output_hidden_states);
  out.text_embeds = text_projection(out.pooler_output);
  return out;
}

at::Tensor clip_prompt_embedding(CLIPTextTransformerImpl& text_model, const at::Tensor& input_ids, int64_t clip_skip,
                                 const at::Tensor& attention_mask) {
  const int64_t layers = text_model.config.num_hidden_layers;
  if (clip_skip < 0 || clip_skip > layers) {
    throw_input_error("bad_clip_skip", "clip_skip " + std::to_string(clip_skip) + " must be between 0 and the " +
                                           std::to_string(layers) + " layers of the text encoder");
  }
  check_input_ids(input_ids, attention_mask);
  auto ids = input_ids.to(torch::kLong);
  auto hidden = text_model.embeddings(ids);
  auto mask = additive_padding_mask(attention_mask, hidden.options());
  auto outputs = text_model.encoder(hidden, mask, /*causal=*/true, layers - clip_skip);
  return text_model.final_layer_norm(outputs.empty() ? hidden : outputs.back());
}

}  // namespace a2a
