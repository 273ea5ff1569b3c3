#pragma once
// Euler method on the probability-flow ODE in sigma space (Karras et al. 2022, Algorithm 2 without
// churn); diffusers' EulerDiscreteScheduler.
#include "diffusion/schedulers/scheduler.h"

#include <limits>

namespace a2a {

struct EulerDiscreteSchedulerOptions : SchedulerOptions {
  std::string interpolation_type = "linear";  // linear | log_linear
  bool use_karras_sigmas = false;
  std::optional<double> sigma_min;
  std::optional<double> sigma_max;
  std::string timestep_type = "discrete";  // discrete | continuous
  std::string final_sigmas_type = "zero";  // zero | sigma_min

  EulerDiscreteSchedulerOptions() { timestep_spacing = "linspace"; }
  static EulerDiscreteSchedulerOptions from_json(const nlohmann::json& config);
};

class EulerDiscreteScheduler : public Scheduler {
 public:
  explicit EulerDiscreteScheduler(EulerDiscreteSchedulerOptions options);
  std::string class_name() const override { return "EulerDiscreteScheduler"; }
  const EulerDiscreteSchedulerOptions& options() const { return options_; }

  // Karras et al.'s stochastic churn (0 = plain Euler, as pipelines call it).
  void set_churn(double s_churn, double s_tmin, double s_tmax, double s_noise);

  void set_timesteps(int64_t num_inference_steps) override;
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& sample, double timestep) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;
  void set_begin_index(int64_t begin_index) override { index_.set_begin_index(begin_index); }

 private:
  EulerDiscreteSchedulerOptions options_;
  std::vector<float> train_sigmas_;  // ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5, ascending in t
  std::vector<float> sigma_values_;
  scheduler_detail::SigmaStepIndex index_;
  double s_churn_ = 0.0;
  double s_tmin_ = 0.0;
  double s_tmax_ = std::numeric_limits<double>::infinity();
  double s_noise_ = 1.0;
};

}  // namespace a2a
