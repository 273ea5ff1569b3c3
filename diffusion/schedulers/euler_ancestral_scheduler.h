#pragma once
// Ancestral Euler sampling in sigma space (k-diffusion's sample_euler_ancestral): each step goes down
// to sigma_down deterministically and adds fresh noise of size sigma_up. diffusers'
// EulerAncestralDiscreteScheduler.
#include "diffusion/schedulers/scheduler.h"

namespace a2a {

struct EulerAncestralDiscreteSchedulerOptions : SchedulerOptions {
  EulerAncestralDiscreteSchedulerOptions() { timestep_spacing = "linspace"; }
  static EulerAncestralDiscreteSchedulerOptions from_json(const nlohmann::json& config);
};

class EulerAncestralDiscreteScheduler : public Scheduler {
 public:
  explicit EulerAncestralDiscreteScheduler(EulerAncestralDiscreteSchedulerOptions options);
  std::string class_name() const override { return "EulerAncestralDiscreteScheduler"; }
  const EulerAncestralDiscreteSchedulerOptions& options() const { return options_; }

  void set_timesteps(int64_t num_inference_steps) override;
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& sample, double timestep) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;
  void set_begin_index(int64_t begin_index) override { index_.set_begin_index(begin_index); }

 private:
  EulerAncestralDiscreteSchedulerOptions options_;
  std::vector<float> train_sigmas_;
  std::vector<float> sigma_values_;
  scheduler_detail::SigmaStepIndex index_;
};

}  // namespace a2a
