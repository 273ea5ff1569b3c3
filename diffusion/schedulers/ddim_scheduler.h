#pragma once
// DDIM (Song et al. 2020): deterministic for eta = 0; diffusers' DDIMScheduler.
#include "diffusion/schedulers/scheduler.h"

namespace a2a {

struct DDIMSchedulerOptions : SchedulerOptions {
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  bool thresholding = false;

  DDIMSchedulerOptions() { timestep_spacing = "leading"; }
  static DDIMSchedulerOptions from_json(const nlohmann::json& config);
};

class DDIMScheduler : public Scheduler {
 public:
  explicit DDIMScheduler(DDIMSchedulerOptions options);
  std::string class_name() const override { return "DDIMScheduler"; }
  const DDIMSchedulerOptions& options() const { return options_; }

  // The step's eta (0 = deterministic DDIM, 1 = DDPM-like noise) and use_clipped_model_output, which
  // diffusers passes to step() and pipelines fix for a whole run.
  bool uses_eta() const override { return true; }
  void set_eta(double eta) override { eta_ = eta; }
  double eta() const { return eta_; }
  void set_use_clipped_model_output(bool value) { use_clipped_model_output_ = value; }

  void set_timesteps(int64_t num_inference_steps) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;

 private:
  DDIMSchedulerOptions options_;
  std::vector<float> alphas_cumprod_values_;
  float final_alpha_cumprod_ = 1.0f;
  int64_t num_inference_steps_ = 0;
  double eta_ = 0.0;
  bool use_clipped_model_output_ = false;
};

}  // namespace a2a
