#pragma once
// diffusers' TransformerTemporalModel (transformers/transformer_temporal.py, 0.29.2): attention along the
// frames of each pixel, named like the state_dict: norm, proj_in, transformer_blocks.N, proj_out.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/transformer2d.h"

namespace a2a {

struct TransformerTemporalModelOptions {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t in_channels = 0;
  int64_t num_layers = 1;
  double dropout = 0.0;
  int64_t norm_num_groups = 32;
  std::optional<int64_t> cross_attention_dim;  // unused by attn2 while double_self_attention holds
  bool attention_bias = false;
  std::string activation_fn = "geglu";
  bool norm_elementwise_affine = true;
  bool double_self_attention = true;
};

// GroupNorm (eps 1e-6) over [B, C, F, H, W], proj_in, transformer blocks over the F tokens of each of
// the B·H·W positions, proj_out, plus the input as residual.
class TransformerTemporalModelImpl : public torch::nn::Module {
 public:
  explicit TransformerTemporalModelImpl(const TransformerTemporalModelOptions& options);
  // hidden_states [B·F, C, H, W] (frames folded into the batch) -> the same shape.
  // encoder_hidden_states: for attn2 when double_self_attention is false, else undefined.
  at::Tensor forward(const at::Tensor& hidden_states, int64_t num_frames, const at::Tensor& encoder_hidden_states = {});

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear proj_in{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
  std::vector<BasicTransformerBlock> blocks;
  torch::nn::Linear proj_out{nullptr};
};
TORCH_MODULE(TransformerTemporalModel);

}  // namespace a2a
