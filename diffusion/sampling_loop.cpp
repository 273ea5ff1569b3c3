#include "diffusion/sampling_loop.h"

#include "pipeline/error.h"

#include <algorithm>
#include <cmath>

namespace a2a {

bool uses_classifier_free_guidance(double guidance_scale) { return guidance_scale > 1.0; }

int64_t img2img_start_index(int64_t num_inference_steps, double strength, int order) {
  const int64_t init_timestep =
      std::min(static_cast<int64_t>(static_cast<double>(num_inference_steps) * strength), num_inference_steps);
  const int64_t t_start = std::max<int64_t>(num_inference_steps - init_timestep, 0);
  return t_start * order;
}

at::Tensor classifier_free_guidance(const at::Tensor& prediction, double guidance_scale, double guidance_rescale) {
  auto halves = prediction.chunk(2, 0);
  const at::Tensor& uncond = halves[0];
  const at::Tensor& cond = halves[1];
  at::Tensor guided = uncond + guidance_scale * (cond - uncond);
  if (guidance_rescale > 0) {
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < guided.dim(); ++d) dims.push_back(d);
    at::Tensor std_cond = cond.std(dims, /*unbiased=*/true, /*keepdim=*/true);
    at::Tensor std_guided = guided.std(dims, /*unbiased=*/true, /*keepdim=*/true);
    at::Tensor rescaled = guided * (std_cond / std_guided);
    guided = guidance_rescale * rescaled + (1 - guidance_rescale) * guided;
  }
  return guided;
}

at::Tensor run_sampling_loop(Scheduler& scheduler, const Denoiser& denoiser, const SamplingOptions& options,
                             at::Generator generator) {
  if (options.num_inference_steps < 1)
    throw_input_error("bad_steps", "the number of denoising steps must be at least 1, got " +
                                       std::to_string(options.num_inference_steps));
  scheduler.set_timesteps(options.num_inference_steps);
  at::Tensor timesteps = scheduler.timesteps();
  const c10::optional<at::Generator> gen(generator);
  const auto float32 = at::TensorOptions().dtype(at::kFloat);

  at::Tensor latents;
  if (options.init_latent.defined()) {
    if (options.init_latent.dim() < 3)
      throw_input_error("bad_shape", "init_latent must be [B, C, h, w], got " + std::to_string(options.init_latent.dim()) +
                                         " dimensions");
    if (!(options.strength > 0 && options.strength <= 1))
      throw_input_error("bad_strength", "strength must be in (0, 1], got " + std::to_string(options.strength));
    const int64_t start = img2img_start_index(options.num_inference_steps, options.strength, scheduler.order());
    if (start >= timesteps.size(0))
      throw_input_error("bad_strength", "strength " + std::to_string(options.strength) + " with " +
                                            std::to_string(options.num_inference_steps) +
                                            " steps leaves no denoising step; raise strength or steps");
    timesteps = timesteps.slice(0, start);
    scheduler.set_begin_index(start);
    at::Tensor init = options.init_latent.to(at::kFloat).contiguous();
    at::Tensor noise = at::randn(init.sizes(), gen, float32);
    latents = scheduler.add_noise(init, noise, timesteps[0].item<double>());
  } else if (options.initial_noise.defined()) {
    latents = options.initial_noise.to(at::kFloat) * scheduler.init_noise_sigma();
  } else {
    if (options.latent_shape.size() < 3)
      throw_input_error("bad_shape", "the latent shape must be [B, C, h, w]");
    latents = at::randn(options.latent_shape, gen, float32) * scheduler.init_noise_sigma();
  }

  const bool guided = uses_classifier_free_guidance(options.guidance_scale);
  const int64_t total = timesteps.size(0);
  for (int64_t i = 0; i < total; ++i) {
    if (options.before_step) options.before_step();
    const at::Tensor t = timesteps[i];
    const double t_value = t.item<double>();
    at::Tensor model_input = guided ? at::cat({latents, latents}, 0) : latents;
    model_input = scheduler.scale_model_input(model_input, t_value);
    at::Tensor prediction = denoiser(model_input, t);
    if (guided) prediction = classifier_free_guidance(prediction, options.guidance_scale, options.guidance_rescale);
    latents = scheduler.step(prediction, t_value, latents, generator).prev_sample;
    if (options.on_step) options.on_step(i + 1, total);
  }
  return latents;
}

}  // namespace a2a
