#pragma once
// diffusers' timestep embeddings (embeddings.py, 0.29.2): the sinusoidal Timesteps projection and the
// TimestepEmbedding MLP (linear_1, act, linear_2), named like the state_dict; from 0.33.1, the complex
// 1-D rotary table (get_1d_rotary_pos_embed) and PixArtAlphaTextProjection (Wan's text_embedder).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "diffusion/resnet_block.h"

namespace a2a {

// get_timestep_embedding: timesteps [N] (any numeric dtype) -> [N, embedding_dim] float32.
// Frequencies exp(-ln(max_period)·i / (half - downscale_freq_shift)), i < half; [sin, cos] or, with
// flip_sin_to_cos, [cos, sin]; an odd embedding_dim gets one zero column.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t embedding_dim, bool flip_sin_to_cos = false,
                              double downscale_freq_shift = 1.0, double scale = 1.0, double max_period = 10000.0);

// diffusers' Timesteps module: no parameters.
class TimestepsImpl : public torch::nn::Module {
 public:
  TimestepsImpl(int64_t num_channels, bool flip_sin_to_cos, double downscale_freq_shift);
  at::Tensor forward(const at::Tensor& timesteps);
  int64_t num_channels() const { return num_channels_; }

 private:
  int64_t num_channels_;
  bool flip_sin_to_cos_;
  double downscale_freq_shift_;
};
TORCH_MODULE(Timesteps);

struct TimestepEmbeddingOptions {
  int64_t in_channels = 0;
  int64_t time_embed_dim = 0;
  std::string act_fn = "silu";
  std::optional<int64_t> out_dim;  // time_embed_dim when unset
  std::optional<std::string> post_act_fn;
  std::optional<int64_t> cond_proj_dim;  // adds cond_proj (LCM's timestep_cond)
  bool sample_proj_bias = true;
};

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  explicit TimestepEmbeddingImpl(const TimestepEmbeddingOptions& options);
  // sample [B, in_channels]; condition [B, cond_proj_dim] or undefined.
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& condition = {});

  torch::nn::Linear linear_1{nullptr};
  torch::nn::Linear cond_proj{nullptr};
  torch::nn::Linear linear_2{nullptr};

 private:
  DiffusersActivation act_;
  std::optional<DiffusersActivation> post_act_;
};
TORCH_MODULE(TimestepEmbedding);

// get_1d_rotary_pos_embed(dim, positions, theta, use_real=False, freqs_dtype=float64): the complex128
// table [positions, dim/2] of exp(i·p·theta^(-2j/dim)) for p < positions. dim must be even.
at::Tensor rotary_pos_embed_complex(int64_t dim, int64_t positions, double theta = 10000.0);

// Caption projection: linear_2(act_1(linear_1(caption))); act_fn "gelu_tanh" or "silu".
class PixArtAlphaTextProjectionImpl : public torch::nn::Module {
 public:
  PixArtAlphaTextProjectionImpl(int64_t in_features, int64_t hidden_size, std::optional<int64_t> out_features = {},
                                const std::string& act_fn = "gelu_tanh");
  at::Tensor forward(const at::Tensor& caption);

  torch::nn::Linear linear_1{nullptr};
  torch::nn::Linear linear_2{nullptr};

 private:
  bool gelu_tanh_ = true;  // else SiLU
};
TORCH_MODULE(PixArtAlphaTextProjection);

}  // namespace a2a
