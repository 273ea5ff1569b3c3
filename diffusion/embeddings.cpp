#include "diffusion/embeddings.h"

#include <torch/torch.h>

#include <cmath>

#include "base/error.h"

namespace a2a {

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t embedding_dim, bool flip_sin_to_cos,
                              double downscale_freq_shift, double scale, double max_period) {
  if (timesteps.dim() != 1) {
    throw_input_error("bad_shape", "timestep embedding: timesteps must be 1-D, got " + c10::str(timesteps.sizes()));
  }
  const int64_t half = embedding_dim / 2;
  // Same float32 operation order as the reference: arange·(-ln P), then / (half - shift), then exp.
  at::Tensor exponent = at::arange(0, half, timesteps.options().dtype(at::kFloat)) * (-std::log(max_period));
  exponent = exponent / (static_cast<double>(half) - downscale_freq_shift);
  at::Tensor freqs = exponent.exp();
  at::Tensor emb = timesteps.unsqueeze(1).to(at::kFloat) * freqs.unsqueeze(0);
  if (scale != 1.0) emb = emb * scale;
  emb = flip_sin_to_cos ? at::cat({emb.cos(), emb.sin()}, -1) : at::cat({emb.sin(), emb.cos()}, -1);
  if (embedding_dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1, 0, 0}, 0);
  return emb;
}

TimestepsImpl::TimestepsImpl(int64_t num_channels, bool flip_sin_to_cos, double downscale_freq_shift)
    : num_channels_(num_channels), flip_sin_to_cos_(flip_sin_to_cos), downscale_freq_shift_(downscale_freq_shift) {}

at::Tensor TimestepsImpl::forward(const at::Tensor& timesteps) {
  return timestep_embedding(timesteps, num_channels_, flip_sin_to_cos_, downscale_freq_shift_);
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(const TimestepEmbeddingOptions& options)
    : act_(parse_diffusers_activation(options.act_fn)) {
  if (options.post_act_fn) post_act_ = parse_diffusers_activation(*options.post_act_fn);
  linear_1 = register_module(
      "linear_1",
      torch::nn::Linear(
          torch::nn::LinearOptions(options.in_channels, options.time_embed_dim).bias(options.sample_proj_bias)));
  if (options.cond_proj_dim) {
    cond_proj = register_module(
        "cond_proj",
        torch::nn::Linear(torch::nn::LinearOptions(*options.cond_proj_dim, options.in_channels).bias(false)));
  }
  linear_2 = register_module(
      "linear_2", torch::nn::Linear(
                      torch::nn::LinearOptions(options.time_embed_dim, options.out_dim.value_or(options.time_embed_dim))
                          .bias(options.sample_proj_bias)));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& sample, const at::Tensor& condition) {
  at::Tensor h = sample;
  if (condition.defined()) {
    if (!cond_proj) {
      throw_input_error("unexpected_input",
                        "TimestepEmbedding: a timestep condition was given but the model has no "
                        "cond_proj (time_cond_proj_dim is not set)");
    }
    h = h + cond_proj(condition);
  }
  h = linear_2(apply_activation(act_, linear_1(h)));
  if (post_act_) h = apply_activation(*post_act_, h);
  return h;
}

at::Tensor rotary_pos_embed_complex(int64_t dim, int64_t positions, double theta) {
  if (dim < 0 || dim % 2 != 0 || positions < 0) {
    throw_input_error("bad_config", "rotary embedding: dimension " + std::to_string(dim) +
                                        " must be even and non-negative, positions " + std::to_string(positions) +
                                        " non-negative");
  }
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  // The reference's order: 1 / theta^(arange(0, dim, 2) / dim), then outer(arange(positions), freqs).
  const at::Tensor freqs = 1.0 / at::pow(theta, at::arange(0, dim, 2, f64) / static_cast<double>(dim));
  const at::Tensor angles = at::outer(at::arange(positions, at::kLong).to(at::kDouble), freqs);
  return at::polar(at::ones_like(angles), angles);
}

PixArtAlphaTextProjectionImpl::PixArtAlphaTextProjectionImpl(int64_t in_features, int64_t hidden_size,
                                                             std::optional<int64_t> out_features,
                                                             const std::string& act_fn) {
  if (act_fn != "gelu_tanh" && act_fn != "silu") {
    throw_input_error("unsupported_model_config",
                      "PixArtAlphaTextProjection: act_fn '" + act_fn + "' is not supported (gelu_tanh or silu)");
  }
  gelu_tanh_ = act_fn == "gelu_tanh";
  linear_1 = register_module("linear_1", torch::nn::Linear(in_features, hidden_size));
  linear_2 = register_module("linear_2", torch::nn::Linear(hidden_size, out_features.value_or(hidden_size)));
}

at::Tensor PixArtAlphaTextProjectionImpl::forward(const at::Tensor& caption) {
  const at::Tensor h = linear_1(caption);
  return linear_2(gelu_tanh_ ? at::gelu(h, "tanh") : at::silu(h));
}

}  // namespace a2a
