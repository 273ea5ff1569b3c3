#pragma once
// DDPM (Ho et al. 2020): ancestral sampling with the posterior variance; diffusers' DDPMScheduler.
#include "diffusion/schedulers/scheduler.h"

namespace a2a {

struct DDPMSchedulerOptions : SchedulerOptions {
  // fixed_small | fixed_small_log | fixed_large | fixed_large_log | learned | learned_range
  std::string variance_type = "fixed_small";
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool thresholding = false;

  DDPMSchedulerOptions() { timestep_spacing = "leading"; }
  static DDPMSchedulerOptions from_json(const nlohmann::json& config);
};

class DDPMScheduler : public Scheduler {
 public:
  explicit DDPMScheduler(DDPMSchedulerOptions options);
  std::string class_name() const override { return "DDPMScheduler"; }
  const DDPMSchedulerOptions& options() const { return options_; }

  void set_timesteps(int64_t num_inference_steps) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;

 private:
  int64_t previous_timestep(int64_t timestep) const;
  float alpha_prod(int64_t timestep) const;  // alphas_cumprod[t], or 1 before the first step
  at::Tensor variance(int64_t timestep, const at::Tensor& predicted_variance) const;

  DDPMSchedulerOptions options_;
  std::vector<float> alphas_cumprod_values_;
  int64_t num_inference_steps_ = 0;
};

}  // namespace a2a
