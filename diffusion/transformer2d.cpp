#include "diffusion/transformer2d.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

namespace {

// The diffusers convention for 2-D masks (1 = keep, 0 = discard) turned into an additive bias [B, 1, S].
at::Tensor mask_to_bias(const at::Tensor& mask, at::ScalarType dtype) {
  if (!mask.defined() || mask.dim() != 2) return mask;
  return ((1 - mask.to(dtype)) * -10000.0).unsqueeze(1);
}

torch::nn::LayerNorm make_layer_norm(int64_t dim, double eps, bool affine) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps).elementwise_affine(affine));
}

}  // namespace

FeedForwardActivationImpl::FeedForwardActivationImpl(const std::string& activation_fn, int64_t dim_in, int64_t dim_out,
                                                     bool bias)
    : activation_fn_(activation_fn) {
  if (activation_fn != "geglu" && activation_fn != "gelu" && activation_fn != "gelu-approximate" &&
      activation_fn != "geglu-approximate") {
    throw_input_error("unsupported_model_config",
                      "FeedForward: activation_fn '" + activation_fn +
                          "' is not supported (expected geglu, gelu, gelu-approximate or geglu-approximate)");
  }
  const int64_t proj_out = activation_fn == "geglu" ? 2 * dim_out : dim_out;
  proj = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(dim_in, proj_out).bias(bias)));
}

at::Tensor FeedForwardActivationImpl::forward(const at::Tensor& x) {
  at::Tensor h = proj(x);
  if (activation_fn_ == "geglu") {
    auto parts = h.chunk(2, -1);
    return parts[0] * at::gelu(parts[1]);
  }
  if (activation_fn_ == "gelu") return at::gelu(h);
  if (activation_fn_ == "gelu-approximate") return at::gelu(h, "tanh");
  return h * at::sigmoid(1.702 * h);
}

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& options) {
  const int64_t inner = options.inner_dim.value_or(options.dim * options.mult);
  const int64_t out = options.dim_out.value_or(options.dim);
  act = FeedForwardActivation(options.activation_fn, options.dim, inner, options.bias);
  out_proj = torch::nn::Linear(torch::nn::LinearOptions(inner, out).bias(options.bias));
  net = torch::nn::ModuleList(act, torch::nn::Dropout(options.dropout), out_proj);
  if (options.final_dropout) net->push_back(torch::nn::Dropout(options.dropout));
  register_module("net", net);
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return out_proj(act(x)); }

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const BasicTransformerBlockOptions& options) : options_(options) {
  norm1 = register_module("norm1", make_layer_norm(options.dim, options.norm_eps, options.norm_elementwise_affine));
  AttentionOptions a1;
  a1.query_dim = options.dim;
  a1.heads = options.num_attention_heads;
  a1.dim_head = options.attention_head_dim;
  a1.dropout = options.dropout;
  a1.bias = options.attention_bias;
  a1.cross_attention_dim = options.only_cross_attention ? options.cross_attention_dim : std::nullopt;
  a1.upcast_attention = options.upcast_attention;
  a1.out_bias = options.attention_out_bias;
  attn1 = register_module("attn1", Attention(a1));
  if (options.cross_attention_dim || options.double_self_attention) {
    norm2 = register_module("norm2", make_layer_norm(options.dim, options.norm_eps, options.norm_elementwise_affine));
    AttentionOptions a2 = a1;
    a2.cross_attention_dim = options.double_self_attention ? std::nullopt : options.cross_attention_dim;
    attn2 = register_module("attn2", Attention(a2));
  }
  norm3 = register_module("norm3", make_layer_norm(options.dim, options.norm_eps, options.norm_elementwise_affine));
  FeedForwardOptions ffo;
  ffo.dim = options.dim;
  ffo.dropout = options.dropout;
  ffo.activation_fn = options.activation_fn;
  ffo.final_dropout = options.final_dropout;
  ffo.inner_dim = options.ff_inner_dim;
  ffo.bias = options.ff_bias;
  ff = register_module("ff", FeedForward(ffo));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states,
                                              const at::Tensor& attention_mask,
                                              const at::Tensor& encoder_attention_mask) {
  at::Tensor h = hidden_states;
  h = h + attn1(norm1(h), options_.only_cross_attention ? encoder_hidden_states : at::Tensor(), attention_mask);
  if (attn2) h = h + attn2(norm2(h), encoder_hidden_states, encoder_attention_mask);
  return h + ff(norm3(h));
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DModelOptions& options)
    : options_(options), inner_dim_(options.num_attention_heads * options.attention_head_dim) {
  const int64_t in = options.in_channels;
  const int64_t out = options.out_channels.value_or(in);
  norm =
      register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(options.norm_num_groups, in).eps(1e-6)));
  if (options.use_linear_projection) {
    proj_in_linear = register_module("proj_in", torch::nn::Linear(in, inner_dim_));
  } else {
    proj_in_conv = register_module("proj_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, inner_dim_, 1)));
  }
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    BasicTransformerBlockOptions bo;
    bo.dim = inner_dim_;
    bo.num_attention_heads = options.num_attention_heads;
    bo.attention_head_dim = options.attention_head_dim;
    bo.dropout = options.dropout;
    bo.cross_attention_dim = options.cross_attention_dim;
    bo.activation_fn = options.activation_fn;
    bo.attention_bias = options.attention_bias;
    bo.only_cross_attention = options.only_cross_attention;
    bo.double_self_attention = options.double_self_attention;
    bo.upcast_attention = options.upcast_attention;
    bo.norm_elementwise_affine = options.norm_elementwise_affine;
    bo.norm_eps = options.norm_eps;
    blocks.emplace_back(bo);
    transformer_blocks->push_back(blocks.back());
  }
  if (options.use_linear_projection) {
    proj_out_linear = register_module("proj_out", torch::nn::Linear(inner_dim_, out));
  } else {
    proj_out_conv = register_module("proj_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(inner_dim_, out, 1)));
  }
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states,
                                           const at::Tensor& attention_mask, const at::Tensor& encoder_attention_mask) {
  if (hidden_states.dim() != 4 || hidden_states.size(1) != options_.in_channels) {
    throw_input_error("bad_shape", "Transformer2DModel: expected [B, " + std::to_string(options_.in_channels) +
                                       ", H, W], got " + c10::str(hidden_states.sizes()));
  }
  const int64_t batch = hidden_states.size(0), height = hidden_states.size(2), width = hidden_states.size(3);
  const at::Tensor self_bias = mask_to_bias(attention_mask, hidden_states.scalar_type());
  const at::Tensor cross_bias = mask_to_bias(encoder_attention_mask, hidden_states.scalar_type());

  at::Tensor h = norm(hidden_states);
  if (proj_in_conv) {
    h = proj_in_conv(h);
    h = h.permute({0, 2, 3, 1}).reshape({batch, height * width, inner_dim_});
  } else {
    h = h.permute({0, 2, 3, 1}).reshape({batch, height * width, options_.in_channels});
    h = proj_in_linear(h);
  }
  for (auto& block : blocks) h = block(h, encoder_hidden_states, self_bias, cross_bias);
  if (proj_out_conv) {
    h = h.reshape({batch, height, width, inner_dim_}).permute({0, 3, 1, 2}).contiguous();
    h = proj_out_conv(h);
  } else {
    h = proj_out_linear(h);
    h = h.reshape({batch, height, width, -1}).permute({0, 3, 1, 2}).contiguous();
  }
  return h + hidden_states;
}

}  // namespace a2a
