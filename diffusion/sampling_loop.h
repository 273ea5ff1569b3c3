#pragma once
// The denoising loop of diffusers' latent diffusion pipelines (StableDiffusionPipeline and its img2img
// variant), independent of the model: a denoiser function stands in for the UNet.
#include "diffusion/scheduler.h"

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace a2a {

// The model's prediction (noise, velocity or sample, as the scheduler's prediction_type says) for
// `latent_input` at `timestep`, a 0-d tensor of the schedule's dtype. Under classifier-free guidance
// `latent_input` holds 2B rows, the unconditional batch first, and the denoiser must condition the
// rows the same way (for example encoder_hidden_states = cat([negative, positive])).
using Denoiser = std::function<at::Tensor(const at::Tensor& latent_input, const at::Tensor& timestep)>;

struct SamplingOptions {
  int64_t num_inference_steps = 50;
  // Classifier-free guidance is on when > 1: uncond + scale · (cond − uncond).
  double guidance_scale = 7.5;
  // Lin et al. (2023) §3.4: blends the guided prediction with one rescaled to the conditional
  // prediction's standard deviation (0 = off).
  double guidance_rescale = 0.0;
  // Text-to-image: the latent shape [B, C, h, w]. Ignored when init_latent is given.
  std::vector<int64_t> latent_shape;
  // Text-to-image: given starting noise (diffusers' `latents` argument) instead of a draw from the
  // generator; it is still multiplied by the scheduler's init_noise_sigma.
  at::Tensor initial_noise;
  // Image-to-image: the clean starting latent [B, C, h, w] in the denoiser's space, noised to the
  // timestep that leaves `strength` of the schedule to run.
  at::Tensor init_latent;
  double strength = 0.8;
  // Called after each step with (steps done, total); may throw to stop (cancellation).
  std::function<void(int64_t done, int64_t total)> on_step;
  // Called before each step; may throw to stop.
  std::function<void()> before_step;
};

bool uses_classifier_free_guidance(double guidance_scale);

// diffusers' StableDiffusionImg2ImgPipeline.get_timesteps: the index of the first timestep run for a
// given strength (0 = the whole schedule).
int64_t img2img_start_index(int64_t num_inference_steps, double strength, int order);

// uncond + scale · (cond − uncond) on a [2B, ...] prediction (uncond first), with optional rescale.
at::Tensor classifier_free_guidance(const at::Tensor& prediction, double guidance_scale, double guidance_rescale);

// Runs the whole loop: sets the scheduler's timesteps, draws the initial noise from `generator` (the
// same generator drives the scheduler's own noise, as in diffusers), and returns the final latents.
// Text-to-image with a CPU generator seeded like torch.Generator().manual_seed(seed) draws the same
// numbers as diffusers.
at::Tensor run_sampling_loop(Scheduler& scheduler, const Denoiser& denoiser, const SamplingOptions& options,
                             at::Generator generator);

}  // namespace a2a
