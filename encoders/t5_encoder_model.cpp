#include "encoders/t5_encoder_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "encoders/clip_text_model.h"
#include "nn/attention.h"
#include "weights/component_resolver.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"

namespace a2a {

namespace {

const char* const kT5Activations[] = {"relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "silu"};

// T5Config's reading of feed_forward_proj: "ACT" or "gated-ACT", and "gated-gelu" means gelu_new.
void derive_t5_feed_forward(T5EncoderConfig& c, const std::string& source) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dash; (dash = c.feed_forward_proj.find('-', start)) != std::string::npos; start = dash + 1)
    parts.push_back(c.feed_forward_proj.substr(start, dash - start));
  parts.push_back(c.feed_forward_proj.substr(start));
  c.dense_act_fn = parts.back();
  c.is_gated_act = parts.front() == "gated";
  if ((parts.size() > 1 && !c.is_gated_act) || parts.size() > 2) {
    throw_input_error("bad_config", source + ": feed_forward_proj \"" + c.feed_forward_proj +
                                        "\" must be \"ACT\" or \"gated-ACT\", e.g. \"relu\" or \"gated-gelu\"");
  }
  if (c.feed_forward_proj == "gated-gelu") c.dense_act_fn = "gelu_new";
}

}  // namespace

T5EncoderConfig T5EncoderConfig::umt5_defaults() {
  T5EncoderConfig c;
  c.model_type = "umt5";
  c.vocab_size = 250112;
  c.d_ff = 1024;
  c.num_layers = 8;
  c.num_heads = 6;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_new";
  c.is_gated_act = true;
  return c;
}

T5EncoderConfig T5EncoderConfig::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "T5 config"));
}

T5EncoderConfig T5EncoderConfig::from_config(const ConfigReader& r) {
  const std::string model_type = r.get_or<std::string>("model_type", "t5");
  T5EncoderConfig c = model_type == "umt5" ? umt5_defaults() : T5EncoderConfig{};
  c.model_type = model_type;
  r.read("vocab_size", c.vocab_size);
  r.read("d_model", c.d_model);
  r.read("d_kv", c.d_kv);
  r.read("d_ff", c.d_ff);
  r.read("num_layers", c.num_layers);
  r.read("num_heads", c.num_heads);
  r.read("relative_attention_num_buckets", c.relative_attention_num_buckets);
  r.read("relative_attention_max_distance", c.relative_attention_max_distance);
  r.read("dropout_rate", c.dropout_rate);
  r.read("layer_norm_epsilon", c.layer_norm_epsilon);
  r.read("initializer_factor", c.initializer_factor);
  r.read("feed_forward_proj", c.feed_forward_proj);
  r.read("pad_token_id", c.pad_token_id);
  r.read("eos_token_id", c.eos_token_id);
  r.read("tie_word_embeddings", c.tie_word_embeddings);
  derive_t5_feed_forward(c, r.source());
  r.read("dense_act_fn", c.dense_act_fn);
  r.read("is_gated_act", c.is_gated_act);
  c.validate(r.source());
  return c;
}

void T5EncoderConfig::validate(const std::string& source) const {
  const std::string where = source.empty() ? std::string("T5 config") : source;
  auto fail = [&](const std::string& code, const std::string& what) { throw_input_error(code, where + ": " + what); };
  if (model_type != "t5" && model_type != "umt5")
    fail("unsupported_model_config", "model_type \"" + model_type + "\" is not supported (t5, umt5)");
  auto check_range = [&](const char* name, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi)
      fail("bad_config", std::string(name) + " " + std::to_string(value) + " must be between " + std::to_string(lo) +
                             " and " + std::to_string(hi));
  };
  check_range("vocab_size", vocab_size, 1, int64_t{1} << 24);
  check_range("d_model", d_model, 1, int64_t{1} << 20);
  check_range("d_kv", d_kv, 1, int64_t{1} << 16);
  check_range("d_ff", d_ff, 1, int64_t{1} << 20);
  check_range("num_layers", num_layers, 1, 1024);
  check_range("num_heads", num_heads, 1, 4096);
  // The encoder's buckets are bidirectional: half per sign, and half of those exact (at least one).
  check_range("relative_attention_num_buckets", relative_attention_num_buckets, 4, 1 << 16);
  const int64_t max_exact = relative_attention_num_buckets / 4;
  check_range("relative_attention_max_distance", relative_attention_max_distance, max_exact + 1, int64_t{1} << 30);
  if (!std::isfinite(layer_norm_epsilon) || layer_norm_epsilon < 0)
    fail("bad_config", "layer_norm_epsilon must be a finite non-negative number");
  if (std::find(std::begin(kT5Activations), std::end(kT5Activations), dense_act_fn) == std::end(kT5Activations))
    fail("bad_config", "dense_act_fn \"" + dense_act_fn +
                           "\" is not supported (relu, gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, silu)");
}

at::Tensor t5_relative_position_bucket(const at::Tensor& relative_position, bool bidirectional, int64_t num_buckets,
                                       int64_t max_distance) {
  at::Tensor position = relative_position.to(at::kLong);
  at::Tensor buckets = at::zeros_like(position);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (position > 0).to(at::kLong) * num_buckets;
    position = position.abs();
  } else {
    position = -at::clamp_max(position, 0);
  }
  const int64_t max_exact = num_buckets / 2;
  at::Tensor is_small = position < max_exact;
  // The reference's float32 expression: log(n / max_exact) / log(max_distance / max_exact) * (buckets −
  // max_exact), truncated toward zero; the small positions give -inf or negative logs that are not used.
  const double log_range = std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact));
  at::Tensor large = (at::log(position.to(at::kFloat) / max_exact) / log_range * (num_buckets - max_exact));
  large = at::where(is_small, at::zeros_like(large), large).to(at::kLong) + max_exact;
  large = at::clamp_max(large, num_buckets - 1);
  return buckets + at::where(is_small, position, large);
}

T5AttentionImpl::T5AttentionImpl(const T5EncoderConfig& c, bool has_relative_attention_bias)
    : num_heads(c.num_heads),
      d_kv(c.d_kv),
      num_buckets(c.relative_attention_num_buckets),
      max_distance(c.relative_attention_max_distance) {
  auto linear = [](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  q = register_module("q", linear(c.d_model, c.inner_dim()));
  k = register_module("k", linear(c.d_model, c.inner_dim()));
  v = register_module("v", linear(c.d_model, c.inner_dim()));
  o = register_module("o", linear(c.inner_dim(), c.d_model));
  if (has_relative_attention_bias)
    relative_attention_bias =
        register_module("relative_attention_bias", torch::nn::Embedding(c.relative_attention_num_buckets, c.num_heads));
}

at::Tensor T5AttentionImpl::compute_bias(int64_t query_length, int64_t key_length) {
  TORCH_CHECK(!relative_attention_bias.is_empty(), "compute_bias needs a relative_attention_bias");
  const auto options = at::TensorOptions().dtype(at::kLong).device(relative_attention_bias->weight.device());
  at::Tensor relative = at::arange(key_length, options).unsqueeze(0) - at::arange(query_length, options).unsqueeze(1);
  at::Tensor buckets = t5_relative_position_bucket(relative, /*bidirectional=*/true, num_buckets, max_distance);
  return relative_attention_bias(buckets).permute({2, 0, 1}).unsqueeze(0);
}

at::Tensor T5AttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& position_bias) {
  const int64_t b = hidden.size(0), l = hidden.size(1);
  auto heads = [&](const at::Tensor& x) { return x.view({b, l, num_heads, d_kv}).transpose(1, 2); };
  at::Tensor context =
      scaled_dot_product_attention(heads(q(hidden)), heads(k(hidden)), heads(v(hidden)), position_bias, 1.0);
  return o(context.transpose(1, 2).reshape({b, l, num_heads * d_kv}));
}

T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const T5EncoderConfig& c, bool has_relative_attention_bias) {
  SelfAttention = register_module("SelfAttention", T5Attention(c, has_relative_attention_bias));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
}

at::Tensor T5LayerSelfAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& position_bias) {
  return hidden + SelfAttention(layer_norm(hidden), position_bias);
}

T5DenseReluDenseImpl::T5DenseReluDenseImpl(const T5EncoderConfig& c) : dense_act_fn(c.dense_act_fn) {
  auto linear = [](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  if (c.is_gated_act) {
    wi_0 = register_module("wi_0", linear(c.d_model, c.d_ff));
    wi_1 = register_module("wi_1", linear(c.d_model, c.d_ff));
  } else {
    wi = register_module("wi", linear(c.d_model, c.d_ff));
  }
  wo = register_module("wo", linear(c.d_ff, c.d_model));
}

at::Tensor T5DenseReluDenseImpl::forward(const at::Tensor& hidden) {
  at::Tensor h = wi.is_empty() ? clip_activation(wi_0(hidden), dense_act_fn) * wi_1(hidden)
                               : clip_activation(wi(hidden), dense_act_fn);
  // The reference keeps wo in float32 when loading half precision (FLAN-T5 overflows otherwise).
  if (h.scalar_type() != wo->weight.scalar_type()) h = h.to(wo->weight.scalar_type());
  return wo(h);
}

T5LayerFFImpl::T5LayerFFImpl(const T5EncoderConfig& c) {
  DenseReluDense = register_module("DenseReluDense", T5DenseReluDense(c));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
}

at::Tensor T5LayerFFImpl::forward(const at::Tensor& hidden) { return hidden + DenseReluDense(layer_norm(hidden)); }

namespace {

// The reference's guard for float16: infinities become ±(max − 1000), everything else is clamped to ±max.
at::Tensor t5_clamp_half_overflow(const at::Tensor& hidden) {
  if (hidden.scalar_type() != at::kHalf) return hidden;
  const double max = std::numeric_limits<c10::Half>::max();
  const double bound = hidden.isinf().any().item<bool>() ? max - 1000 : max;
  return hidden.clamp(-bound, bound);
}

}  // namespace

T5BlockImpl::T5BlockImpl(const T5EncoderConfig& c, bool has_relative_attention_bias) {
  layer = register_module("layer", torch::nn::ModuleList());
  self_attention_ = T5LayerSelfAttention(c, has_relative_attention_bias);
  feed_forward_ = T5LayerFF(c);
  layer->push_back(self_attention_);
  layer->push_back(feed_forward_);
}

at::Tensor T5BlockImpl::forward(const at::Tensor& hidden, const at::Tensor& position_bias) {
  at::Tensor h = t5_clamp_half_overflow(self_attention_(hidden, position_bias));
  return t5_clamp_half_overflow(feed_forward_(h));
}

namespace {

void t5_check_inputs(const at::Tensor& input_ids, const at::Tensor& attention_mask, int64_t vocab) {
  if (!input_ids.defined() || input_ids.dim() != 2)
    throw_input_error("bad_shape", "T5 encoder: input_ids must be [batch, length]");
  if (input_ids.scalar_type() != at::kLong && input_ids.scalar_type() != at::kInt)
    throw_input_error("bad_dtype", "T5 encoder: input_ids must hold integer token ids");
  if (attention_mask.defined() && attention_mask.sizes() != input_ids.sizes())
    throw_input_error("bad_shape", "T5 encoder: attention_mask " + c10::str(attention_mask.sizes()) +
                                       " must have the shape of input_ids " + c10::str(input_ids.sizes()));
  if (input_ids.numel() > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab)
      throw_input_error("token_out_of_range", "T5 encoder: token id " + std::to_string(lo < 0 ? lo : hi) +
                                                  " outside the vocabulary of " + std::to_string(vocab));
  }
}

// [B, L] 1/0 -> additive [B, 1, 1, L]: the lowest finite float32 on padded keys, as the reference's
// (1 − mask) · finfo.min; float32 because the scores it joins are float32.
at::Tensor t5_additive_mask(const at::Tensor& attention_mask, const at::Device& device) {
  if (!attention_mask.defined()) return {};
  auto keep = attention_mask.to(device, at::kFloat).view({attention_mask.size(0), 1, 1, attention_mask.size(1)});
  return (1.0 - keep) * std::numeric_limits<float>::lowest();
}

}  // namespace

T5StackImpl::T5StackImpl(const T5EncoderConfig& c, torch::nn::Embedding shared) : config(c), embed_tokens(shared) {
  config.validate();
  block = register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i)
    block->push_back(T5Block(config, i == 0 || config.bias_in_every_block()));
  final_layer_norm = register_module("final_layer_norm", RMSNorm(config.d_model, config.layer_norm_epsilon));
}

T5EncoderOutput T5StackImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                     bool output_hidden_states) {
  t5_check_inputs(input_ids, attention_mask, embed_tokens->weight.size(0));
  const at::Device device = embed_tokens->weight.device();
  at::Tensor hidden = embed_tokens(input_ids.to(device, at::kLong));
  const int64_t length = hidden.size(1);
  const at::Tensor mask = t5_additive_mask(attention_mask, device);
  T5EncoderOutput out;
  at::Tensor position_bias;
  for (size_t i = 0; i < block->size(); ++i) {
    auto& layer = block->at<T5BlockImpl>(i);
    if (output_hidden_states) out.hidden_states.push_back(hidden);
    // T5 computes the bias (mask included) in block 0 and hands it on; UMT5 computes its own per block.
    if (i == 0 || config.bias_in_every_block()) {
      position_bias = layer.self_attention().SelfAttention->compute_bias(length, length);
      if (mask.defined()) position_bias = position_bias + mask;
    }
    hidden = layer.forward(hidden, position_bias);
  }
  out.last_hidden_state = final_layer_norm(hidden);
  if (output_hidden_states) out.hidden_states.push_back(out.last_hidden_state);
  return out;
}

T5EncoderModelImpl::T5EncoderModelImpl(const T5EncoderConfig& c) {
  shared = register_module("shared", torch::nn::Embedding(c.vocab_size, c.d_model));
  encoder = register_module("encoder", T5Stack(c, shared));
}

T5EncoderOutput T5EncoderModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                            bool output_hidden_states) {
  return encoder(input_ids, attention_mask, output_hidden_states);
}

TensorMap tie_t5_embeddings(const TensorMap& tensors) {
  const std::string tied = "encoder.embed_tokens.weight", shared = "shared.weight";
  auto it = tensors.find(tied);
  if (it == tensors.end()) return tensors;
  TensorMap out = tensors;
  auto existing = out.find(shared);
  if (existing == out.end()) {
    out[shared] = it->second;
  } else if (existing->second.sizes() != it->second.sizes()) {
    throw_input_error("weights_conversion", "T5 encoder: " + tied + " " + c10::str(it->second.sizes()) + " and " +
                                                shared + " " + c10::str(existing->second.sizes()) +
                                                " are one tied embedding but differ in shape");
  }
  out.erase(tied);
  return out;
}

LoadOptions t5_encoder_load_options(const std::string& source) {
  LoadOptions options;
  options.source = source;
  options.convert = tie_t5_embeddings;
  options.ignored_unexpected = {"decoder.*", "lm_head.weight"};
  return options;
}

T5EncoderModel load_t5_encoder(const std::string& path, const std::string& component, const std::string& device,
                               at::ScalarType dtype) {
  ComponentRequest request;
  request.component = component;
  request.who = "T5 encoder";
  request.hint = "give a transformers T5EncoderModel / UMT5EncoderModel folder (config.json and safetensors weights)";
  const ResolvedComponent files = resolve_component(path, request);
  T5EncoderModel model(T5EncoderConfig::from_config(files.config));
  LoadOptions options = t5_encoder_load_options(files.weights);
  options.device = device;
  options.dtype = dtype;
  load_weights(*model, files.weights, options);
  model->to(at::Device(device));
  model->eval();
  return model;
}

}  // namespace a2a
