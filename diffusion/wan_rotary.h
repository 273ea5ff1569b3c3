#pragma once
// Wan 2.1's 3-axis rotary position embedding (transformer_wan.py, diffusers 0.33.1): WanRotaryPosEmbed and
// the rotation WanAttnProcessor2_0 applies to the query and key heads. Each head's channels are split into
// frame, height and width parts; a token at (f, h, w) of the patch grid rotates its channel pairs by the
// angles of its own position on each axis. No parameters (the tables are not in the state_dict).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>

namespace a2a {

// Complex columns (channel pairs) of the frame, height and width parts of a head:
// {head_dim/2 - 2·(head_dim/6), head_dim/6, head_dim/6}. Throws a2a::Error ("bad_config") unless head_dim
// is even and at least 6.
std::array<int64_t, 3> wan_rotary_axis_columns(int64_t attention_head_dim);

class WanRotaryPosEmbedImpl : public torch::nn::Module {
 public:
  // Throws a2a::Error ("bad_config") for a head_dim wan_rotary_axis_columns refuses or max_seq_len <= 0.
  WanRotaryPosEmbedImpl(int64_t attention_head_dim, std::array<int64_t, 3> patch_size, int64_t max_seq_len,
                        double theta = 10000.0);

  // hidden_states [B, C, F, H, W] (only its shape and device are read) -> complex128
  // [1, 1, (F/p_t)·(H/p_h)·(W/p_w), head_dim/2], tokens in frame, row, column order. Throws an input
  // error ("bad_shape") when a patch-grid side exceeds max_seq_len.
  at::Tensor forward(const at::Tensor& hidden_states);

  // The concatenated per-axis tables [max_seq_len, head_dim/2], complex128, on the CPU.
  const at::Tensor& freqs() const { return freqs_; }

 private:
  int64_t attention_head_dim_;
  std::array<int64_t, 3> patch_size_;
  int64_t max_seq_len_;
  at::Tensor freqs_;
};
TORCH_MODULE(WanRotaryPosEmbed);

// x [B, heads, L, head_dim] read as interleaved (real, imaginary) pairs and multiplied in complex128 by
// freqs [1, 1, L, head_dim/2]; the result has x's dtype.
at::Tensor apply_wan_rotary_emb(const at::Tensor& x, const at::Tensor& freqs);

}  // namespace a2a
