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

}  // namespace a2a
