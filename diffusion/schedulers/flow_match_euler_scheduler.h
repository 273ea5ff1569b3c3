#pragma once
// Euler steps along a rectified-flow velocity field (Stable Diffusion 3's sampler): x_t = (1 - sigma) x_0 +
// sigma * noise, the model predicts the velocity. diffusers' FlowMatchEulerDiscreteScheduler.
#include "diffusion/schedulers/scheduler.h"

#include <limits>

namespace a2a {

struct FlowMatchEulerDiscreteSchedulerOptions {
  int64_t num_train_timesteps = 1000;
  double shift = 1.0;

  static FlowMatchEulerDiscreteSchedulerOptions from_json(const nlohmann::json& config);
};

class FlowMatchEulerDiscreteScheduler : public Scheduler {
 public:
  explicit FlowMatchEulerDiscreteScheduler(FlowMatchEulerDiscreteSchedulerOptions options);
  std::string class_name() const override { return "FlowMatchEulerDiscreteScheduler"; }
  const FlowMatchEulerDiscreteSchedulerOptions& options() const { return options_; }

  void set_churn(double s_churn, double s_tmin, double s_tmax, double s_noise);

  void set_timesteps(int64_t num_inference_steps) override;
  // No input scaling: the model sees the raw interpolant; initial noise is N(0, 1).
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  // diffusers' scale_noise: sigma * noise + (1 - sigma) * sample.
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;
  void set_begin_index(int64_t begin_index) override { index_.set_begin_index(begin_index); }

 private:
  FlowMatchEulerDiscreteSchedulerOptions options_;
  float sigma_min_ = 0.0f;
  float sigma_max_ = 1.0f;
  std::vector<float> sigma_values_;
  scheduler_detail::SigmaStepIndex index_;
  double s_churn_ = 0.0;
  double s_tmin_ = 0.0;
  double s_tmax_ = std::numeric_limits<double>::infinity();
  double s_noise_ = 1.0;
};

}  // namespace a2a
