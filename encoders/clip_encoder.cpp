#include "encoders/clip_encoder.h"

#include <torch/torch.h>

#include <algorithm>

#include "base/error.h"
#include "nn/attention.h"

namespace a2a {

at::Tensor clip_activation(const at::Tensor& x, const std::string& hidden_act) {
  if (hidden_act == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  if (hidden_act == "gelu") return torch::gelu(x);
  if (hidden_act == "gelu_new" || hidden_act == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (hidden_act == "relu") return torch::relu(x);
  if (hidden_act == "silu") return torch::silu(x);
  throw_input_error("bad_config", "unsupported activation \"" + hidden_act + "\"");
}

void check_clip_activation(const std::string& hidden_act, const std::string& who) {
  static const char* known[] = {"quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu"};
  if (std::find(std::begin(known), std::end(known), hidden_act) == std::end(known)) {
    throw_input_error("bad_config", who + ": unsupported hidden_act \"" + hidden_act +
                                        "\" (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, relu, silu)");
  }
}

CLIPAttentionImpl::CLIPAttentionImpl(int64_t hidden_size, int64_t heads) : num_heads(heads) {
  k_proj = register_module("k_proj", torch::nn::Linear(hidden_size, hidden_size));
  v_proj = register_module("v_proj", torch::nn::Linear(hidden_size, hidden_size));
  q_proj = register_module("q_proj", torch::nn::Linear(hidden_size, hidden_size));
  out_proj = register_module("out_proj", torch::nn::Linear(hidden_size, hidden_size));
}

at::Tensor CLIPAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& mask, bool causal) {
  const int64_t b = hidden.size(0), l = hidden.size(1), d = hidden.size(2);
  const int64_t head_dim = d / num_heads;
  auto split = [&](const at::Tensor& t) { return t.view({b, l, num_heads, head_dim}).transpose(1, 2); };
  auto q = split(q_proj(hidden));
  auto k = split(k_proj(hidden));
  auto v = split(v_proj(hidden));
  auto attended = scaled_dot_product_attention(q, k, v, mask, std::nullopt, causal);
  return out_proj(attended.transpose(1, 2).reshape({b, l, d}));
}

CLIPMLPImpl::CLIPMLPImpl(int64_t hidden_size, int64_t intermediate_size, std::string act) : hidden_act(std::move(act)) {
  fc1 = register_module("fc1", torch::nn::Linear(hidden_size, intermediate_size));
  fc2 = register_module("fc2", torch::nn::Linear(intermediate_size, hidden_size));
}

at::Tensor CLIPMLPImpl::forward(const at::Tensor& hidden) { return fc2(clip_activation(fc1(hidden), hidden_act)); }

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(int64_t hidden_size, int64_t intermediate_size, int64_t num_heads,
                                           const std::string& hidden_act, double layer_norm_eps) {
  auto norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden_size}).eps(layer_norm_eps)); };
  self_attn = register_module("self_attn", CLIPAttention(hidden_size, num_heads));
  layer_norm1 = register_module("layer_norm1", norm());
  mlp = register_module("mlp", CLIPMLP(hidden_size, intermediate_size, hidden_act));
  layer_norm2 = register_module("layer_norm2", norm());
}

at::Tensor CLIPEncoderLayerImpl::forward(const at::Tensor& hidden, const at::Tensor& mask, bool causal) {
  auto h = hidden + self_attn(layer_norm1(hidden), mask, causal);
  return h + mlp(layer_norm2(h));
}

CLIPEncoderImpl::CLIPEncoderImpl(int64_t hidden_size, int64_t intermediate_size, int64_t num_heads, int64_t num_layers,
                                 const std::string& hidden_act, double layer_norm_eps) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    layers->push_back(CLIPEncoderLayer(hidden_size, intermediate_size, num_heads, hidden_act, layer_norm_eps));
  }
}

std::vector<at::Tensor> CLIPEncoderImpl::forward(const at::Tensor& hidden, const at::Tensor& mask, bool causal,
                                                 int64_t stop_after) {
  std::vector<at::Tensor> outputs;
  const int64_t count = stop_after < 0 ? static_cast<int64_t>(layers->size())
                                       : std::min<int64_t>(stop_after, static_cast<int64_t>(layers->size()));
  at::Tensor h = hidden;
  for (int64_t i = 0; i < count; ++i) {
    h = layers->at<CLIPEncoderLayerImpl>(i).forward(h, mask, causal);
    outputs.push_back(h);
  }
  return outputs;
}

}  // namespace a2a
