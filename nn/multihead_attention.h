#pragma once
// torch.nn.MultiheadAttention's self-attention, named like its state_dict (in_proj_weight, in_proj_bias,
// bias_k, bias_v, out_proj), for checkpoints that store that module (ImageBind, OpenCLIP).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace a2a {

struct MultiheadAttentionOptions {
  int64_t embed_dim = 0;
  int64_t num_heads = 1;
  bool bias = true;          // in_proj_bias and out_proj.bias
  bool add_bias_kv = false;  // bias_k / bias_v [1, 1, E]: one learned key/value position appended to every sequence
};

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiheadAttentionImpl(const MultiheadAttentionOptions& options);
  // Self-attention of x [B, L, E] (batch first, unlike torch's default layout; the arithmetic is the
  // same). attn_mask: optional additive float mask [L, L] (0 / -inf) or boolean (true = attend); with
  // add_bias_kv the appended position is always attended, as torch pads the mask with a zero column.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& attn_mask = {});

  const MultiheadAttentionOptions& options() const { return options_; }

  at::Tensor in_proj_weight, in_proj_bias, bias_k, bias_v;
  torch::nn::Linear out_proj{nullptr};

 private:
  MultiheadAttentionOptions options_;
};
TORCH_MODULE(MultiheadAttention);

}  // namespace a2a
