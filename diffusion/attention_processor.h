#pragma once
// diffusers' Attention (attention_processor.py, 0.29.2) with the default processor's numerics, named
// like its state_dict: group_norm, to_q, to_k, to_v, norm_q, norm_k, to_out.0 (to_out.1 is the dropout).
// qk_norm and the head rotation follow 0.33.1's Wan processor (WanAttnProcessor2_0).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "nn/rms_norm.h"

namespace a2a {

struct AttentionOptions {
  int64_t query_dim = 0;
  // Width of encoder_hidden_states (to_k/to_v input); query_dim when unset. Without encoder states at
  // call time the layer attends to its own input, so then it must equal query_dim.
  std::optional<int64_t> cross_attention_dim;
  int64_t heads = 8;
  int64_t dim_head = 64;
  double dropout = 0.0;
  bool bias = false;  // q/k/v projections
  bool upcast_attention = false;
  bool upcast_softmax = false;
  std::optional<int64_t> norm_num_groups;  // GroupNorm on the input (VAE mid-block attention)
  bool out_bias = true;
  bool scale_qk = true;  // scale 1/sqrt(dim_head); 1 otherwise
  double eps = 1e-5;     // of group_norm and of the qk norms
  double rescale_output_factor = 1.0;
  bool residual_connection = false;
  std::optional<int64_t> out_dim;  // query_dim when unset; heads = out_dim / dim_head when set
  // Unset, or "rms_norm_across_heads": norm_q / norm_k, RMSNorm over all heads' channels of the projected
  // query and key, before the heads are split (Wan, LTX). Other kinds raise "unsupported_model_config".
  std::optional<std::string> qk_norm;
};

// A processor's position step on the split query or key heads [B, heads, L, head_dim] (rotary embeddings).
using AttentionHeadRotation = std::function<at::Tensor(const at::Tensor&)>;

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& options);

  // hidden_states [B, L, query_dim] or [B, C, H, W] (flattened to L = H·W and restored).
  // encoder_hidden_states [B, S, cross_attention_dim]; undefined = self-attention.
  // attention_mask: additive bias broadcastable to [B, heads, L, S]; a 3-D [B, 1|L, S] bias is applied
  // to every head, as diffusers does.
  // rotate_heads, when given, is applied to the query and key heads after the qk norms.
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states = {},
                     const at::Tensor& attention_mask = {}, const AttentionHeadRotation& rotate_heads = {});

  const AttentionOptions& options() const { return options_; }
  int64_t heads() const { return heads_; }

  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr};
  torch::nn::Linear to_k{nullptr};
  torch::nn::Linear to_v{nullptr};
  RMSNorm norm_q{nullptr};  // with qk_norm only
  RMSNorm norm_k{nullptr};
  torch::nn::ModuleList to_out{nullptr};   // [Linear, Dropout]
  torch::nn::Linear to_out_proj{nullptr};  // to_out.0

 private:
  AttentionOptions options_;
  int64_t heads_ = 0;
  int64_t inner_dim_ = 0;
  double scale_ = 1.0;
};
TORCH_MODULE(Attention);

}  // namespace a2a
