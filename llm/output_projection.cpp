#include "llm/output_projection.h"

#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "nn/attention.h"
#include "weights/config_reader.h"

namespace a2a {

namespace {
torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}
}  // namespace

OutputProjectionOptions OutputProjectionOptions::from_json(const nlohmann::json& config) {
  return from_config(ConfigReader(config.is_null() ? nlohmann::json::object() : config, "projection config"));
}

OutputProjectionOptions OutputProjectionOptions::from_config(const ConfigReader& c) {
  OutputProjectionOptions o;
  o.in_dim = c.get_or<int64_t>("in_dim", o.in_dim);
  o.out_dim = c.get_or<int64_t>("out_dim", o.out_dim);
  o.num_input_tokens = c.get_or<int64_t>("num_input_tokens", o.num_input_tokens);
  o.num_output_tokens = c.get_or<int64_t>("num_output_tokens", o.num_output_tokens);
  o.mode = c.get_or<std::string>("mode", o.mode);
  o.hidden_dim = c.get_or<int64_t>("hidden_dim", o.hidden_dim);
  o.nhead = c.get_or<int64_t>("nhead", o.nhead);
  const int64_t layers = c.get_or<int64_t>("layers", o.num_encoder_layers);
  o.num_encoder_layers = c.get_or<int64_t>("num_encoder_layers", layers);
  o.num_decoder_layers = c.get_or<int64_t>("num_decoder_layers", layers);
  o.dim_feedforward = c.get_or<int64_t>("dim_feedforward", 4 * o.hidden_dim);
  o.layer_norm_eps = c.get_or<double>("layer_norm_eps", o.layer_norm_eps);
  return o;
}

void OutputProjectionOptions::validate() const {
  if (mode != "linear" && mode != "transformer")
    throw_input_error("bad_projection_config", "output projection mode '" + mode + "' is not linear or transformer");
  if (in_dim <= 0 || out_dim <= 0 || num_output_tokens <= 0 || hidden_dim <= 0 || nhead <= 0)
    throw_input_error("bad_projection_config", "output projection sizes must be positive");
  if (mode == "transformer" && hidden_dim % nhead != 0)
    throw_input_error("bad_projection_config", "output projection hidden_dim " + std::to_string(hidden_dim) +
                                                   " is not a multiple of nhead " + std::to_string(nhead));
}

PackedMultiheadAttentionImpl::PackedMultiheadAttentionImpl(int64_t embed_dim, int64_t heads) : num_heads(heads) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * embed_dim}));
  torch::nn::init::xavier_uniform_(in_proj_weight);
  out_proj = register_module("out_proj", torch::nn::Linear(embed_dim, embed_dim));
}

at::Tensor PackedMultiheadAttentionImpl::forward(const at::Tensor& query, const at::Tensor& key_value) {
  const int64_t batch = query.size(0), lq = query.size(1), lk = key_value.size(1), dim = query.size(2);
  const int64_t head = dim / num_heads;
  auto w = in_proj_weight.chunk(3, 0);
  auto b = in_proj_bias.chunk(3, 0);
  auto split = [&](const at::Tensor& x, int64_t len) { return x.view({batch, len, num_heads, head}).transpose(1, 2); };
  auto q = split(at::linear(query, w[0], b[0]), lq);
  auto k = split(at::linear(key_value, w[1], b[1]), lk);
  auto v = split(at::linear(key_value, w[2], b[2]), lk);
  auto out = scaled_dot_product_attention(q, k, v, {}, 1.0 / std::sqrt(static_cast<double>(head)));
  return out_proj(out.transpose(1, 2).reshape({batch, lq, dim}));
}

PreNormEncoderLayerImpl::PreNormEncoderLayerImpl(int64_t d_model, int64_t nhead, int64_t ff, double eps) {
  self_attn = register_module("self_attn", PackedMultiheadAttention(d_model, nhead));
  linear1 = register_module("linear1", torch::nn::Linear(d_model, ff));
  linear2 = register_module("linear2", torch::nn::Linear(ff, d_model));
  norm1 = register_module("norm1", layer_norm(d_model, eps));
  norm2 = register_module("norm2", layer_norm(d_model, eps));
}

at::Tensor PreNormEncoderLayerImpl::forward(const at::Tensor& src) {
  auto h = norm1(src);
  auto x = src + self_attn(h, h);
  return x + linear2(at::relu(linear1(norm2(x))));
}

PreNormDecoderLayerImpl::PreNormDecoderLayerImpl(int64_t d_model, int64_t nhead, int64_t ff, double eps) {
  self_attn = register_module("self_attn", PackedMultiheadAttention(d_model, nhead));
  multihead_attn = register_module("multihead_attn", PackedMultiheadAttention(d_model, nhead));
  linear1 = register_module("linear1", torch::nn::Linear(d_model, ff));
  linear2 = register_module("linear2", torch::nn::Linear(ff, d_model));
  norm1 = register_module("norm1", layer_norm(d_model, eps));
  norm2 = register_module("norm2", layer_norm(d_model, eps));
  norm3 = register_module("norm3", layer_norm(d_model, eps));
}

at::Tensor PreNormDecoderLayerImpl::forward(const at::Tensor& tgt, const at::Tensor& memory) {
  auto h = norm1(tgt);
  auto x = tgt + self_attn(h, h);
  x = x + multihead_attn(norm2(x), memory);
  return x + linear2(at::relu(linear1(norm3(x))));
}

PreNormEncoderImpl::PreNormEncoderImpl(int64_t count, int64_t d_model, int64_t nhead, int64_t ff, double eps) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < count; ++i) layers->push_back(PreNormEncoderLayer(d_model, nhead, ff, eps));
  norm = register_module("norm", layer_norm(d_model, eps));
}

at::Tensor PreNormEncoderImpl::forward(const at::Tensor& src) {
  at::Tensor x = src;
  for (size_t i = 0; i < layers->size(); ++i) x = layers->ptr<PreNormEncoderLayerImpl>(i)->forward(x);
  return norm(x);
}

PreNormDecoderImpl::PreNormDecoderImpl(int64_t count, int64_t d_model, int64_t nhead, int64_t ff, double eps) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < count; ++i) layers->push_back(PreNormDecoderLayer(d_model, nhead, ff, eps));
  norm = register_module("norm", layer_norm(d_model, eps));
}

at::Tensor PreNormDecoderImpl::forward(const at::Tensor& tgt, const at::Tensor& memory) {
  at::Tensor x = tgt;
  for (size_t i = 0; i < layers->size(); ++i) x = layers->ptr<PreNormDecoderLayerImpl>(i)->forward(x, memory);
  return norm(x);
}

PreNormTransformerImpl::PreNormTransformerImpl(int64_t d_model, int64_t nhead, int64_t encoder_layers,
                                               int64_t decoder_layers, int64_t ff, double eps) {
  encoder = register_module("encoder", PreNormEncoder(encoder_layers, d_model, nhead, ff, eps));
  decoder = register_module("decoder", PreNormDecoder(decoder_layers, d_model, nhead, ff, eps));
}

at::Tensor PreNormTransformerImpl::forward(const at::Tensor& src, const at::Tensor& tgt) {
  return decoder(tgt, encoder(src));
}

OutputProjectionImpl::OutputProjectionImpl(const OutputProjectionOptions& o) : options(o) {
  o.validate();
  if (o.mode == "linear") {
    model = register_module("model", torch::nn::Linear(o.in_dim, o.out_dim));
    return;
  }
  fc = register_module("fc", torch::nn::Linear(o.in_dim, o.hidden_dim));
  tfm = register_module("tfm", PreNormTransformer(o.hidden_dim, o.nhead, o.num_encoder_layers, o.num_decoder_layers,
                                                  o.dim_feedforward, o.layer_norm_eps));
  model = register_module("model", torch::nn::Linear(o.hidden_dim, o.out_dim));
  query_embs = register_parameter("query_embs", torch::randn({1, o.num_output_tokens, o.hidden_dim}));
}

at::Tensor OutputProjectionImpl::forward(const at::Tensor& hidden_states, const at::Tensor& input_embeds) {
  if (hidden_states.dim() != 3 || hidden_states.size(2) != options.in_dim) {
    throw_input_error("bad_projection_input",
                      "the output projection expects hidden states [B, K, " + std::to_string(options.in_dim) + "]");
  }
  if (options.mode == "linear") {
    auto out = model(hidden_states);
    if (out.size(1) > options.num_output_tokens) out = out.narrow(1, 0, options.num_output_tokens);
    return out;
  }
  at::Tensor x = hidden_states;
  if (input_embeds.defined()) {
    if (input_embeds.sizes() != hidden_states.sizes())
      throw_input_error("bad_projection_input", "input_embeds must have the shape of the hidden states");
    x = x + input_embeds.to(x.scalar_type());
  }
  x = fc(x);
  auto queries = query_embs.repeat({x.size(0), 1, 1});
  return model(tfm(x, queries));
}

}  // namespace a2a
