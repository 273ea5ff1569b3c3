#pragma once
// PNDM (Liu et al. 2022): Runge-Kutta warm-up then linear multistep (PLMS); Stable Diffusion 1.5's own
// scheduler (with skip_prk_steps). diffusers' PNDMScheduler.
#include "diffusion/schedulers/scheduler.h"

namespace a2a {

struct PNDMSchedulerOptions : SchedulerOptions {
  bool skip_prk_steps = false;
  bool set_alpha_to_one = false;

  PNDMSchedulerOptions() { timestep_spacing = "leading"; }
  static PNDMSchedulerOptions from_json(const nlohmann::json& config);
};

class PNDMScheduler : public Scheduler {
 public:
  explicit PNDMScheduler(PNDMSchedulerOptions options);
  std::string class_name() const override { return "PNDMScheduler"; }
  const PNDMSchedulerOptions& options() const { return options_; }

  // With skip_prk_steps, N steps give N + 1 timesteps (PLMS repeats the second one).
  void set_timesteps(int64_t num_inference_steps) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;

 private:
  SchedulerStepOutput step_prk(const at::Tensor& model_output, int64_t timestep, const at::Tensor& sample);
  SchedulerStepOutput step_plms(const at::Tensor& model_output, int64_t timestep, const at::Tensor& sample);
  at::Tensor previous_sample(const at::Tensor& sample, int64_t timestep, int64_t prev_timestep,
                             const at::Tensor& model_output) const;

  PNDMSchedulerOptions options_;
  std::vector<float> alphas_cumprod_values_;
  float final_alpha_cumprod_ = 1.0f;
  int64_t num_inference_steps_ = 0;
  std::vector<int64_t> prk_timesteps_;
  // Multistep state, reset by set_timesteps.
  std::vector<at::Tensor> ets_;
  at::Tensor cur_model_output_;  // undefined = 0
  at::Tensor cur_sample_;        // undefined = None
  int64_t counter_ = 0;
};

}  // namespace a2a
