#include "diffusion/attention_processor.h"

#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "nn/attention.h"

namespace a2a {

AttentionImpl::AttentionImpl(const AttentionOptions& options) : options_(options) {
  const int64_t out_dim = options.out_dim.value_or(options.query_dim);
  inner_dim_ = options.out_dim ? *options.out_dim : options.dim_head * options.heads;
  heads_ = options.out_dim ? *options.out_dim / options.dim_head : options.heads;
  scale_ = options.scale_qk ? 1.0 / std::sqrt(static_cast<double>(options.dim_head)) : 1.0;
  const int64_t context_dim = options.cross_attention_dim.value_or(options.query_dim);

  if (options.norm_num_groups) {
    group_norm = register_module(
        "group_norm", torch::nn::GroupNorm(
                          torch::nn::GroupNormOptions(*options.norm_num_groups, options.query_dim).eps(options.eps)));
  }
  to_q = register_module("to_q",
                         torch::nn::Linear(torch::nn::LinearOptions(options.query_dim, inner_dim_).bias(options.bias)));
  to_k =
      register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(context_dim, inner_dim_).bias(options.bias)));
  to_v =
      register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(context_dim, inner_dim_).bias(options.bias)));
  if (options.qk_norm) {
    if (*options.qk_norm != "rms_norm_across_heads") {
      throw_input_error("unsupported_model_config",
                        "Attention: qk_norm '" + *options.qk_norm + "' is not supported (only rms_norm_across_heads)");
    }
    norm_q = register_module("norm_q", RMSNorm(inner_dim_, options.eps));
    norm_k = register_module("norm_k", RMSNorm(inner_dim_, options.eps));
  }
  to_out_proj = torch::nn::Linear(torch::nn::LinearOptions(inner_dim_, out_dim).bias(options.out_bias));
  to_out = register_module("to_out", torch::nn::ModuleList(to_out_proj, torch::nn::Dropout(options.dropout)));
}

at::Tensor AttentionImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states,
                                  const at::Tensor& attention_mask, const AttentionHeadRotation& rotate_heads) {
  const at::Tensor residual = hidden_states;
  at::Tensor h = hidden_states;
  const bool spatial = h.dim() == 4;
  int64_t channels = 0, height = 0, width = 0;
  if (spatial) {
    channels = h.size(1);
    height = h.size(2);
    width = h.size(3);
    h = h.view({h.size(0), channels, height * width}).transpose(1, 2);
  }
  if (h.dim() != 3 || h.size(-1) != options_.query_dim) {
    throw_input_error("bad_shape", "Attention: expected hidden states [B, L, " + std::to_string(options_.query_dim) +
                                       "] or [B, " + std::to_string(options_.query_dim) + ", H, W], got " +
                                       c10::str(hidden_states.sizes()));
  }
  if (group_norm) h = group_norm(h.transpose(1, 2)).transpose(1, 2);

  const at::Tensor& context = encoder_hidden_states.defined() ? encoder_hidden_states : h;
  if (context.size(-1) != to_k->options.in_features()) {
    throw_input_error("bad_shape", "Attention: key/value input has width " + std::to_string(context.size(-1)) +
                                       " but to_k expects " + std::to_string(to_k->options.in_features()) +
                                       (encoder_hidden_states.defined()
                                            ? std::string(" (encoder_hidden_states)")
                                            : std::string(" (no encoder_hidden_states: self-attention fallback)")));
  }
  const int64_t batch = h.size(0);
  const int64_t head_dim = inner_dim_ / heads_;
  auto split_heads = [&](const at::Tensor& t) { return t.view({batch, -1, heads_, head_dim}).transpose(1, 2); };
  at::Tensor q = to_q(h);
  at::Tensor k = to_k(context);
  if (norm_q) {
    q = norm_q(q);
    k = norm_k(k);
  }
  q = split_heads(q);
  k = split_heads(k);
  at::Tensor v = split_heads(to_v(context));
  if (rotate_heads) {
    q = rotate_heads(q);
    k = rotate_heads(k);
  }

  at::Tensor mask = attention_mask;
  if (mask.defined() && mask.dim() == 3) mask = mask.unsqueeze(1);

  const auto dtype = q.scalar_type();
  const bool upcast = (options_.upcast_attention || options_.upcast_softmax) && dtype != at::kFloat;
  if (upcast) {
    q = q.to(at::kFloat);
    k = k.to(at::kFloat);
    v = v.to(at::kFloat);
    if (mask.defined() && mask.is_floating_point()) mask = mask.to(at::kFloat);
  }
  at::Tensor out = scaled_dot_product_attention(q, k, v, mask, scale_);
  if (upcast) out = out.to(dtype);
  out = out.transpose(1, 2).reshape({batch, -1, inner_dim_});
  out = to_out_proj(out);

  if (spatial) out = out.transpose(-1, -2).reshape({batch, -1, height, width});
  if (options_.residual_connection) out = out + residual;
  if (options_.rescale_output_factor != 1.0) out = out / options_.rescale_output_factor;
  return out;
}

}  // namespace a2a
