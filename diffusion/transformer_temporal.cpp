#include "diffusion/transformer_temporal.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

TransformerTemporalModelImpl::TransformerTemporalModelImpl(const TransformerTemporalModelOptions& options) {
  const int64_t inner_dim = options.num_attention_heads * options.attention_head_dim;
  norm = register_module(
      "norm",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(options.norm_num_groups, options.in_channels).eps(1e-6)));
  proj_in = register_module("proj_in", torch::nn::Linear(options.in_channels, inner_dim));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    BasicTransformerBlockOptions b;
    b.dim = inner_dim;
    b.num_attention_heads = options.num_attention_heads;
    b.attention_head_dim = options.attention_head_dim;
    b.dropout = options.dropout;
    b.cross_attention_dim = options.cross_attention_dim;
    b.activation_fn = options.activation_fn;
    b.attention_bias = options.attention_bias;
    b.double_self_attention = options.double_self_attention;
    b.norm_elementwise_affine = options.norm_elementwise_affine;
    blocks.emplace_back(b);
    transformer_blocks->push_back(blocks.back());
  }
  proj_out = register_module("proj_out", torch::nn::Linear(inner_dim, options.in_channels));
}

at::Tensor TransformerTemporalModelImpl::forward(const at::Tensor& hidden_states, int64_t num_frames,
                                                 const at::Tensor& encoder_hidden_states) {
  if (hidden_states.dim() != 4 || num_frames <= 0 || hidden_states.size(0) % num_frames != 0) {
    throw_input_error("bad_shape", "TransformerTemporalModel: hidden_states must be [B*" + std::to_string(num_frames) +
                                       ", C, H, W], got " + c10::str(hidden_states.sizes()));
  }
  const int64_t batch_frames = hidden_states.size(0), channels = hidden_states.size(1);
  const int64_t height = hidden_states.size(2), width = hidden_states.size(3);
  const int64_t batch = batch_frames / num_frames;
  at::Tensor h = hidden_states.reshape({batch, num_frames, channels, height, width}).permute({0, 2, 1, 3, 4});
  h = norm(h);
  h = h.permute({0, 3, 4, 2, 1}).reshape({batch * height * width, num_frames, channels});
  h = proj_in(h);
  for (auto& block : blocks) h = block(h, encoder_hidden_states);
  h = proj_out(h);
  h = h.reshape({batch, height, width, num_frames, channels}).permute({0, 3, 4, 1, 2}).contiguous();
  return h.reshape({batch_frames, channels, height, width}) + hidden_states;
}

}  // namespace a2a
