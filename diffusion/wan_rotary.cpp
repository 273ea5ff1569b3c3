#include "diffusion/wan_rotary.h"

#include <torch/torch.h>

#include "base/error.h"
#include "diffusion/embeddings.h"

namespace a2a {

std::array<int64_t, 3> wan_rotary_axis_columns(int64_t attention_head_dim) {
  // The reference asserts even parts and cannot lay out empty height/width parts (head_dim < 6).
  if (attention_head_dim < 6 || attention_head_dim % 2 != 0) {
    throw_input_error("bad_config", "Wan rotary embedding: attention_head_dim " + std::to_string(attention_head_dim) +
                                        " must be even and at least 6 (its channel pairs are split into frame, "
                                        "height and width parts)");
  }
  const int64_t spatial = attention_head_dim / 6;
  return {attention_head_dim / 2 - 2 * spatial, spatial, spatial};
}

WanRotaryPosEmbedImpl::WanRotaryPosEmbedImpl(int64_t attention_head_dim, std::array<int64_t, 3> patch_size,
                                             int64_t max_seq_len, double theta)
    : attention_head_dim_(attention_head_dim), patch_size_(patch_size), max_seq_len_(max_seq_len) {
  const auto columns = wan_rotary_axis_columns(attention_head_dim);
  if (max_seq_len <= 0) {
    throw_input_error("bad_config",
                      "Wan rotary embedding: rope_max_seq_len " + std::to_string(max_seq_len) + " must be positive");
  }
  // Each axis is its own 1-D table of 2·columns channels (the reference's t_dim, h_dim, w_dim).
  std::vector<at::Tensor> tables;
  for (const int64_t c : columns) tables.push_back(rotary_pos_embed_complex(2 * c, max_seq_len, theta));
  freqs_ = at::cat(tables, 1);
}

at::Tensor WanRotaryPosEmbedImpl::forward(const at::Tensor& hidden_states) {
  if (hidden_states.dim() != 5) {
    throw_input_error("bad_shape",
                      "Wan rotary embedding: expected [B, C, F, H, W], got " + c10::str(hidden_states.sizes()));
  }
  std::array<int64_t, 3> grid{};
  for (size_t axis = 0; axis < 3; ++axis) {
    grid[axis] = hidden_states.size(2 + axis) / patch_size_[axis];
    if (grid[axis] > max_seq_len_) {
      throw_input_error("bad_shape", "Wan rotary embedding: input " + c10::str(hidden_states.sizes()) + " has " +
                                         std::to_string(grid[axis]) + " patches along axis " + std::to_string(axis) +
                                         ", more than rope_max_seq_len " + std::to_string(max_seq_len_));
    }
  }
  const auto columns = wan_rotary_axis_columns(attention_head_dim_);
  const auto parts = freqs_.to(hidden_states.device()).split_with_sizes({columns[0], columns[1], columns[2]}, 1);
  const int64_t f = grid[0], h = grid[1], w = grid[2];
  const at::Tensor along_f = parts[0].slice(0, 0, f).view({f, 1, 1, -1}).expand({f, h, w, -1});
  const at::Tensor along_h = parts[1].slice(0, 0, h).view({1, h, 1, -1}).expand({f, h, w, -1});
  const at::Tensor along_w = parts[2].slice(0, 0, w).view({1, 1, w, -1}).expand({f, h, w, -1});
  return at::cat({along_f, along_h, along_w}, -1).reshape({1, 1, f * h * w, -1});
}

at::Tensor apply_wan_rotary_emb(const at::Tensor& x, const at::Tensor& freqs) {
  const at::Tensor pairs = at::view_as_complex(x.to(at::kDouble).unflatten(3, {-1, 2}));
  return at::view_as_real(pairs * freqs).flatten(3, 4).to(x.scalar_type());
}

}  // namespace a2a
