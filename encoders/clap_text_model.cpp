#include "encoders/clap_text_model.h"

#include <torch/torch.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "encoders/clip_encoder.h"
#include "nn/attention.h"
#include "weights/hf_layout.h"

namespace a2a {

ClapTextConfig ClapTextConfig::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "CLAP text config"));
}

ClapTextConfig ClapTextConfig::from_config(const ConfigReader& root) {
  const nlohmann::json& json = root.json();
  ConfigReader r = json.contains("text_config") && json["text_config"].is_object() ? root.child("text_config") : root;
  ClapTextConfig c;
  r.read("vocab_size", c.vocab_size);
  r.read("hidden_size", c.hidden_size);
  r.read("num_hidden_layers", c.num_hidden_layers);
  r.read("num_attention_heads", c.num_attention_heads);
  r.read("intermediate_size", c.intermediate_size);
  r.read("hidden_act", c.hidden_act);
  r.read("hidden_dropout_prob", c.hidden_dropout_prob);
  r.read("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  r.read("max_position_embeddings", c.max_position_embeddings);
  r.read("type_vocab_size", c.type_vocab_size);
  r.read("initializer_factor", c.initializer_factor);
  r.read("layer_norm_eps", c.layer_norm_eps);
  r.read("projection_dim", c.projection_dim);
  r.read("pad_token_id", c.pad_token_id);
  r.read("bos_token_id", c.bos_token_id);
  r.read("eos_token_id", c.eos_token_id);
  r.read("position_embedding_type", c.position_embedding_type);
  r.read("use_cache", c.use_cache);
  r.read("projection_hidden_act", c.projection_hidden_act);
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0) {
    throw_input_error("bad_config", "CLAP text config: hidden_size " + std::to_string(c.hidden_size) +
                                        " must be a positive multiple of num_attention_heads " +
                                        std::to_string(c.num_attention_heads));
  }
  if (c.vocab_size <= 0 || c.max_position_embeddings <= 0 || c.type_vocab_size <= 0 || c.num_hidden_layers < 0 ||
      c.intermediate_size <= 0 || c.projection_dim <= 0) {
    throw_input_error("bad_config",
                      "CLAP text config: vocab_size, max_position_embeddings, type_vocab_size, "
                      "intermediate_size and projection_dim must be positive");
  }
  if (c.pad_token_id < 0 || c.pad_token_id >= c.max_position_embeddings) {
    throw_input_error("bad_config",
                      "CLAP text config: pad_token_id " + std::to_string(c.pad_token_id) +
                          " is also the position padding index and must be below max_position_embeddings");
  }
  if (c.position_embedding_type != "absolute") {
    throw_input_error("unsupported_model_config", "CLAP text config: position_embedding_type \"" +
                                                      c.position_embedding_type + "\" is not supported (absolute)");
  }
  return c;
}

at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx) {
  at::Tensor not_pad = input_ids.ne(padding_idx).to(at::kLong);
  return at::cumsum(not_pad, 1) * not_pad + padding_idx;
}

ClapTextEmbeddingsImpl::ClapTextEmbeddingsImpl(const ClapTextConfig& config) : padding_idx(config.pad_token_id) {
  position_ids =
      register_buffer("position_ids", torch::arange(config.max_position_embeddings, torch::kLong).unsqueeze(0));
  token_type_ids = register_buffer("token_type_ids", torch::zeros({1, config.max_position_embeddings}, torch::kLong));
  word_embeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(
          torch::nn::EmbeddingOptions(config.vocab_size, config.hidden_size).padding_idx(config.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(config.max_position_embeddings, config.hidden_size)
                               .padding_idx(config.pad_token_id)));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(config.type_vocab_size, config.hidden_size));
  LayerNorm = register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

at::Tensor ClapTextEmbeddingsImpl::forward(const at::Tensor& input_ids) {
  if (input_ids.dim() != 2) {
    throw_input_error("bad_shape", "CLAP text model: input_ids " + c10::str(input_ids.sizes()) + " must be [B, L]");
  }
  const int64_t length = input_ids.size(1);
  // Positions run from padding_idx + 1, so the usable length is max_position_embeddings - padding_idx - 1.
  const int64_t max_length = position_embeddings->weight.size(0) - padding_idx - 1;
  if (length > max_length) {
    throw_input_error("sequence_too_long", "CLAP text model: " + std::to_string(length) + " tokens exceed the " +
                                               std::to_string(max_length) + " positions of the model");
  }
  const int64_t vocab = word_embeddings->weight.size(0);
  if (input_ids.numel() > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab) {
      throw_input_error("bad_token_id", "CLAP text model: token ids must be in [0, " + std::to_string(vocab) +
                                            "), got " + std::to_string(lo) + ".." + std::to_string(hi));
    }
  }
  at::Tensor positions = roberta_position_ids(input_ids, padding_idx);
  at::Tensor types = token_type_ids.narrow(1, 0, length).expand({input_ids.size(0), length});
  at::Tensor embeddings = word_embeddings(input_ids) + token_type_embeddings(types) + position_embeddings(positions);
  return LayerNorm(embeddings);
}

ClapTextSelfAttentionImpl::ClapTextSelfAttentionImpl(int64_t hidden_size, int64_t heads) : num_heads(heads) {
  query = register_module("query", torch::nn::Linear(hidden_size, hidden_size));
  key = register_module("key", torch::nn::Linear(hidden_size, hidden_size));
  value = register_module("value", torch::nn::Linear(hidden_size, hidden_size));
}

at::Tensor ClapTextSelfAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& additive_mask) {
  const int64_t b = hidden.size(0), l = hidden.size(1), d = hidden.size(2);
  const int64_t head_dim = d / num_heads;
  auto heads = [&](const at::Tensor& x) { return x.view({b, l, num_heads, head_dim}).transpose(1, 2); };
  at::Tensor context =
      scaled_dot_product_attention(heads(query(hidden)), heads(key(hidden)), heads(value(hidden)), additive_mask);
  return context.transpose(1, 2).reshape({b, l, d});
}

ClapTextResidualOutputImpl::ClapTextResidualOutputImpl(int64_t in_features, int64_t hidden_size,
                                                       double layer_norm_eps) {
  dense = register_module("dense", torch::nn::Linear(in_features, hidden_size));
  LayerNorm = register_module("LayerNorm",
                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden_size}).eps(layer_norm_eps)));
}

at::Tensor ClapTextResidualOutputImpl::forward(const at::Tensor& hidden, const at::Tensor& input) {
  return LayerNorm(dense(hidden) + input);
}

ClapTextAttentionImpl::ClapTextAttentionImpl(const ClapTextConfig& config) {
  self = register_module("self", ClapTextSelfAttention(config.hidden_size, config.num_attention_heads));
  output =
      register_module("output", ClapTextResidualOutput(config.hidden_size, config.hidden_size, config.layer_norm_eps));
}

at::Tensor ClapTextAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& additive_mask) {
  return output(self(hidden, additive_mask), hidden);
}

ClapTextIntermediateImpl::ClapTextIntermediateImpl(const ClapTextConfig& config) : hidden_act(config.hidden_act) {
  dense = register_module("dense", torch::nn::Linear(config.hidden_size, config.intermediate_size));
}

at::Tensor ClapTextIntermediateImpl::forward(const at::Tensor& hidden) {
  return clip_activation(dense(hidden), hidden_act);
}

ClapTextLayerImpl::ClapTextLayerImpl(const ClapTextConfig& config) {
  attention = register_module("attention", ClapTextAttention(config));
  intermediate = register_module("intermediate", ClapTextIntermediate(config));
  output = register_module("output",
                           ClapTextResidualOutput(config.intermediate_size, config.hidden_size, config.layer_norm_eps));
}

at::Tensor ClapTextLayerImpl::forward(const at::Tensor& hidden, const at::Tensor& additive_mask) {
  at::Tensor attended = attention(hidden, additive_mask);
  return output(intermediate(attended), attended);
}

ClapTextEncoderImpl::ClapTextEncoderImpl(const ClapTextConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layer->push_back(ClapTextLayer(config));
}

at::Tensor ClapTextEncoderImpl::forward(const at::Tensor& hidden, const at::Tensor& additive_mask) {
  at::Tensor h = hidden;
  for (const auto& module : *layer) h = module->as<ClapTextLayerImpl>()->forward(h, additive_mask);
  return h;
}

ClapTextPoolerImpl::ClapTextPoolerImpl(int64_t hidden_size) {
  dense = register_module("dense", torch::nn::Linear(hidden_size, hidden_size));
}

at::Tensor ClapTextPoolerImpl::forward(const at::Tensor& last_hidden_state) {
  return torch::tanh(dense(last_hidden_state.select(1, 0)));
}

ClapTextModelImpl::ClapTextModelImpl(const ClapTextConfig& cfg) : config(cfg) {
  embeddings = register_module("embeddings", ClapTextEmbeddings(config));
  encoder = register_module("encoder", ClapTextEncoder(config));
  pooler = register_module("pooler", ClapTextPooler(config.hidden_size));
}

ClapTextOutput ClapTextModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  at::Tensor additive_mask;
  if (attention_mask.defined()) {
    if (attention_mask.sizes() != input_ids.sizes()) {
      throw_input_error("bad_shape", "CLAP text model: attention_mask " + c10::str(attention_mask.sizes()) +
                                         " must match input_ids " + c10::str(input_ids.sizes()));
    }
    // transformers' extended mask: (1 - mask) · finfo(float32).min added to the (float32) scores.
    at::Tensor keep = attention_mask.to(embeddings->LayerNorm->weight.options().dtype(at::kFloat))
                          .view({input_ids.size(0), 1, 1, -1});
    additive_mask = (1.0 - keep) * static_cast<double>(std::numeric_limits<float>::lowest());
  }
  ClapTextOutput out;
  out.last_hidden_state = encoder(embeddings(input_ids), additive_mask);
  out.pooler_output = pooler(out.last_hidden_state);
  return out;
}

ClapProjectionLayerImpl::ClapProjectionLayerImpl(int64_t hidden_size, int64_t projection_dim, std::string act)
    : hidden_act(std::move(act)) {
  linear1 = register_module("linear1", torch::nn::Linear(hidden_size, projection_dim));
  linear2 = register_module("linear2", torch::nn::Linear(projection_dim, projection_dim));
}

at::Tensor ClapProjectionLayerImpl::forward(const at::Tensor& hidden) {
  return linear2(clip_activation(linear1(hidden), hidden_act));
}

ClapTextModelWithProjectionImpl::ClapTextModelWithProjectionImpl(const ClapTextConfig& config) {
  text_model = register_module("text_model", ClapTextModel(config));
  text_projection = register_module(
      "text_projection", ClapProjectionLayer(config.hidden_size, config.projection_dim, config.projection_hidden_act));
}

ClapTextOutput ClapTextModelWithProjectionImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  ClapTextOutput out = text_model(input_ids, attention_mask);
  out.text_embeds = text_projection(out.pooler_output);
  return out;
}

}  // namespace a2a
