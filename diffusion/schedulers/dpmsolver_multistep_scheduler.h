#pragma once
// DPM-Solver / DPM-Solver++ multistep (Lu et al. 2022), orders 1-3, ODE and SDE variants; with
// algorithm_type dpmsolver++ and solver_order 2 it is "DPM++ 2M" (with Karras sigmas: "DPM++ 2M Karras").
// diffusers' DPMSolverMultistepScheduler.
#include "diffusion/schedulers/scheduler.h"

#include <limits>

namespace a2a {

struct DPMSolverMultistepSchedulerOptions : SchedulerOptions {
  int64_t solver_order = 2;
  bool thresholding = false;
  std::string algorithm_type = "dpmsolver++";  // dpmsolver++ | sde-dpmsolver++ | dpmsolver | sde-dpmsolver
  std::string solver_type = "midpoint";        // midpoint | heun
  bool lower_order_final = true;
  bool euler_at_final = false;
  bool use_karras_sigmas = false;
  bool use_lu_lambdas = false;
  std::string final_sigmas_type = "zero";  // zero | sigma_min
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
  std::optional<std::string> variance_type;  // learned | learned_range | none

  DPMSolverMultistepSchedulerOptions() { timestep_spacing = "linspace"; }
  static DPMSolverMultistepSchedulerOptions from_json(const nlohmann::json& config);
};

class DPMSolverMultistepScheduler : public Scheduler {
 public:
  explicit DPMSolverMultistepScheduler(DPMSolverMultistepSchedulerOptions options);
  std::string class_name() const override { return "DPMSolverMultistepScheduler"; }
  const DPMSolverMultistepSchedulerOptions& options() const { return options_; }

  void set_timesteps(int64_t num_inference_steps) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;
  void set_begin_index(int64_t begin_index) override { index_.set_begin_index(begin_index); }

 private:
  at::Tensor convert_model_output(const at::Tensor& model_output, const at::Tensor& sample) const;
  at::Tensor first_order_update(const at::Tensor& model_output, const at::Tensor& sample,
                                const at::Tensor& noise) const;
  at::Tensor second_order_update(const at::Tensor& sample, const at::Tensor& noise) const;
  at::Tensor third_order_update(const at::Tensor& sample) const;

  DPMSolverMultistepSchedulerOptions options_;
  std::vector<float> train_sigmas_;
  std::vector<float> lambda_t_;  // log(alpha_t) - log(sigma_t) per training timestep
  std::vector<float> sigma_values_;
  int64_t num_inference_steps_ = 0;
  std::vector<at::Tensor> model_outputs_;  // the last solver_order converted outputs, oldest first
  int64_t lower_order_nums_ = 0;
  scheduler_detail::SigmaStepIndex index_;
};

}  // namespace a2a
