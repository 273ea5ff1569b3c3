#include "diffusion/guided_sampler.h"

#include "base/error.h"

#include <algorithm>
#include <cmath>

namespace a2a {

bool uses_classifier_free_guidance(double guidance_scale) { return guidance_scale > 1.0; }

at::Tensor guidance_conditioning(const at::Tensor& negative, const at::Tensor& positive, double guidance_scale) {
  return uses_classifier_free_guidance(guidance_scale) ? at::cat({negative, positive}, 0) : positive;
}

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

namespace {

// float32 N(0, 1) noise drawn on the CPU from the generator, then moved to `device`.
at::Tensor cpu_noise(at::IntArrayRef shape, const at::Generator& generator, at::Device device) {
  const c10::optional<at::Generator> gen(generator);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(device);
}

// Image-to-image: drops the timesteps that `strength` skips and returns the init latent noised to the
// first one left.
at::Tensor noised_init_latent(Scheduler& scheduler, const SamplingOptions& options, at::Tensor& timesteps,
                              const at::Generator& generator) {
  if (options.init_latent.dim() < 3)
    throw_input_error("bad_shape", "init_latent must be [B, C, h, w], got " +
                                       std::to_string(options.init_latent.dim()) + " dimensions");
  if (!(options.strength > 0 && options.strength <= 1))
    throw_input_error("bad_strength", "strength must be in (0, 1], got " + std::to_string(options.strength));
  const int64_t start = img2img_start_index(options.num_inference_steps, options.strength, scheduler.order());
  if (start >= timesteps.size(0))
    throw_input_error("bad_strength", "strength " + std::to_string(options.strength) + " with " +
                                          std::to_string(options.num_inference_steps) +
                                          " steps leaves no denoising step; raise strength or steps");
  timesteps = timesteps.slice(0, start);
  scheduler.set_begin_index(start);
  at::Tensor init = options.init_latent.to(options.device, at::kFloat).contiguous();
  at::Tensor noise = cpu_noise(init.sizes(), generator, options.device);
  return scheduler.add_noise(init, noise, timesteps[0].item<double>());
}

// The latents the loop starts from, on options.device; `timesteps` loses the entries img2img skips.
at::Tensor initial_latents(Scheduler& scheduler, const SamplingOptions& options, at::Tensor& timesteps,
                           const at::Generator& generator) {
  if (options.init_latent.defined()) return noised_init_latent(scheduler, options, timesteps, generator);
  if (options.initial_noise.defined())
    return options.initial_noise.to(options.device, at::kFloat) * scheduler.init_noise_sigma();
  if (options.latent_shape.size() < 3) throw_input_error("bad_shape", "the latent shape must be [B, C, h, w]");
  return cpu_noise(options.latent_shape, generator, options.device) * scheduler.init_noise_sigma();
}

// scheduler.step in options' step layout.
at::Tensor scheduler_step(Scheduler& scheduler, const at::Tensor& prediction, double timestep,
                          const at::Tensor& latents, const at::Generator& generator, const SamplingOptions& options) {
  if (!options.to_step_layout) return scheduler.step(prediction, timestep, latents, generator).prev_sample;
  const at::Tensor stepped =
      scheduler.step(options.to_step_layout(prediction), timestep, options.to_step_layout(latents), generator)
          .prev_sample;
  return options.from_step_layout(stepped);
}

}  // namespace

at::Tensor run_guided_sampling(Scheduler& scheduler, const Denoiser& denoiser, const SamplingOptions& options,
                               at::Generator generator) {
  if (options.num_inference_steps < 1)
    throw_input_error("bad_steps", "the number of denoising steps must be at least 1, got " +
                                       std::to_string(options.num_inference_steps));
  scheduler.set_timesteps(options.num_inference_steps);
  scheduler.set_eta(options.eta);
  at::Tensor timesteps = scheduler.timesteps();
  at::Tensor latents = initial_latents(scheduler, options, timesteps, generator);
  // The schedule is read on the CPU (item()) and handed to the denoiser from a copy on its device, so
  // that no step moves data between devices.
  const at::Tensor device_timesteps = timesteps.to(options.device);

  const bool guided = uses_classifier_free_guidance(options.guidance_scale);
  const int64_t total = timesteps.size(0);
  for (int64_t i = 0; i < total; ++i) {
    if (options.is_cancelled && options.is_cancelled()) throw Error(ErrorKind::Cancelled, "interrupted", "interrupted");
    const double t_value = timesteps[i].item<double>();
    at::Tensor model_input = guided ? at::cat({latents, latents}, 0) : latents;
    model_input = scheduler.scale_model_input(model_input, t_value);
    at::Tensor prediction = denoiser(model_input, device_timesteps[i]);
    if (guided) prediction = classifier_free_guidance(prediction, options.guidance_scale, options.guidance_rescale);
    latents = scheduler_step(scheduler, prediction, t_value, latents, generator, options);
    if (options.on_progress) options.on_progress(i + 1, total);
  }
  return latents;
}

}  // namespace a2a
