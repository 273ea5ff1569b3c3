#pragma once
// The guided denoising loop of diffusers' latent diffusion pipelines (StableDiffusionPipeline, its img2img
// variant, AudioLDMPipeline), independent of the model: a denoiser function stands in for the UNet, and
// hooks stand in for the caller's progress reporting and cancellation.
#include "diffusion/schedulers/scheduler.h"

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace a2a {

// The model's prediction (noise, velocity or sample, as the scheduler's prediction_type says) for
// `latent_input` at `timestep`, a 0-d tensor of the schedule's dtype; both are on SamplingOptions::device.
// Under classifier-free guidance `latent_input` holds 2B rows, the unconditional batch first, and the
// denoiser must condition the rows the same way (see guidance_conditioning). The loop keeps the latents,
// guidance and the scheduler's arithmetic in float32: a denoiser whose model computes in another dtype casts
// `latent_input` to it and returns its prediction as float32.
using Denoiser = std::function<at::Tensor(const at::Tensor& latent_input, const at::Tensor& timestep)>;

struct SamplingOptions {
  int64_t num_inference_steps = 50;
  // Classifier-free guidance is on when > 1: uncond + scale · (cond − uncond).
  double guidance_scale = 7.5;
  // Lin et al. (2023) §3.4: blends the guided prediction with one rescaled to the conditional
  // prediction's standard deviation (0 = off).
  double guidance_rescale = 0.0;
  // DDIM's eta (0 = deterministic); schedulers without one ignore it (Scheduler::uses_eta).
  double eta = 0.0;
  // Where the latents live for the whole loop: the denoiser's device. Noise is drawn on the CPU from the
  // generator, as diffusers' randn_tensor does with a CPU generator, and moved there.
  at::Device device = at::kCPU;
  // Text-to-image: the latent shape [B, C, h, w]. Ignored when init_latent is given.
  std::vector<int64_t> latent_shape;
  // Text-to-image: given starting noise (diffusers' `latents` argument) instead of a draw from the
  // generator; it is still multiplied by the scheduler's init_noise_sigma.
  at::Tensor initial_noise;
  // Image-to-image: the clean starting latent [B, C, h, w] in the denoiser's space, noised to the
  // timestep that leaves `strength` of the schedule to run.
  at::Tensor init_latent;
  double strength = 0.8;
  // The layout the scheduler steps in, when it is not the latents' own: TextToVideoSDPipeline folds the
  // frames into the batch ([B, C, F, h, w] -> [B·F, C, h, w]), which decides where a stochastic scheduler's
  // noise lands. Both or neither are set; from_step_layout inverts to_step_layout.
  std::function<at::Tensor(const at::Tensor&)> to_step_layout;
  std::function<at::Tensor(const at::Tensor&)> from_step_layout;
  // Polled before each step; true stops the loop with a2a::Error(Cancelled).
  std::function<bool()> is_cancelled;
  // Called after each step with (steps done, total).
  std::function<void(int64_t done, int64_t total)> on_progress;
};

bool uses_classifier_free_guidance(double guidance_scale);

// The conditioning rows matching the denoiser's latent input: cat([negative, positive]) under guidance,
// else `positive` alone.
at::Tensor guidance_conditioning(const at::Tensor& negative, const at::Tensor& positive, double guidance_scale);

// diffusers' StableDiffusionImg2ImgPipeline.get_timesteps: the index of the first timestep run for a
// given strength (0 = the whole schedule).
int64_t img2img_start_index(int64_t num_inference_steps, double strength, int order);

// uncond + scale · (cond − uncond) on a [2B, ...] prediction (uncond first), with optional rescale.
at::Tensor classifier_free_guidance(const at::Tensor& prediction, double guidance_scale, double guidance_rescale);

// Runs the whole loop: sets the scheduler's timesteps and eta, draws the initial noise from `generator`
// (the same generator drives the scheduler's own noise, as in diffusers), and returns the final latents
// on options.device. Text-to-image with a CPU generator seeded like torch.Generator().manual_seed(seed)
// draws the same numbers as diffusers.
at::Tensor run_guided_sampling(Scheduler& scheduler, const Denoiser& denoiser, const SamplingOptions& options,
                               at::Generator generator);

}  // namespace a2a
