#pragma once
// UniPC (Zhao et al. 2023, arXiv:2302.04867): a multistep predictor (UniP) and corrector (UniC) sharing one
// B(h) expansion; the corrector refines each new sample with the model output evaluated at it, so it costs
// no extra model call. With use_flow_sigmas and flow_prediction it samples rectified-flow models (Wan 2.1).
// diffusers' UniPCMultistepScheduler (0.33.1).
#include "diffusion/schedulers/scheduler.h"

namespace a2a {

struct UniPCMultistepSchedulerOptions : SchedulerOptions {
  int64_t solver_order = 2;  // any order in [1, 20]; 2 for guided sampling, 3 for unconditional
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995;
  double sample_max_value = 1.0;
  bool predict_x0 = true;           // update the x0 prediction (true) or the noise prediction
  std::string solver_type = "bh2";  // bh1 | bh2 (midpoint, heun and logrho are read as bh2)
  bool lower_order_final = true;
  std::vector<double> disable_corrector;  // step indices after which the corrector is skipped
  bool use_karras_sigmas = false;
  bool use_exponential_sigmas = false;
  bool use_beta_sigmas = false;
  bool use_flow_sigmas = false;
  double flow_shift = 1.0;
  std::string final_sigmas_type = "zero";  // zero | sigma_min

  UniPCMultistepSchedulerOptions() { timestep_spacing = "linspace"; }
  // prediction_type may also be flow_prediction here.
  static UniPCMultistepSchedulerOptions from_json(const nlohmann::json& config);
};

class UniPCMultistepScheduler : public Scheduler {
 public:
  explicit UniPCMultistepScheduler(UniPCMultistepSchedulerOptions options);
  std::string class_name() const override { return "UniPCMultistepScheduler"; }
  const UniPCMultistepSchedulerOptions& options() const { return options_; }

  // int64 timesteps for every sigma schedule, as in diffusers.
  void set_timesteps(int64_t num_inference_steps) override;
  SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                           const std::optional<at::Generator>& generator = std::nullopt) override;
  at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) override;
  void set_begin_index(int64_t begin_index) override { index_.set_begin_index(begin_index); }

 private:
  void validate() const;
  std::vector<double> schedule_timesteps(int64_t num_inference_steps) const;
  std::vector<double> flow_sigmas(int64_t num_inference_steps, std::vector<double>& timesteps) const;
  at::Tensor convert_model_output(const at::Tensor& model_output, const at::Tensor& sample) const;
  at::Tensor predictor_update(const at::Tensor& sample, int64_t order) const;
  at::Tensor corrector_update(const at::Tensor& this_model_output, const at::Tensor& last_sample, int64_t order) const;
  bool corrector_disabled_after(int64_t step_index) const;

  UniPCMultistepSchedulerOptions options_;
  std::vector<float> train_sigmas_;
  std::vector<float> sigma_values_;
  int64_t num_inference_steps_ = 0;
  std::vector<at::Tensor> model_outputs_;  // the last solver_order converted outputs, oldest first
  at::Tensor last_sample_;                 // the sample the last predictor step started from
  int64_t lower_order_nums_ = 0;
  int64_t this_order_ = 0;  // the order of the last predictor step, which the next corrector uses
  scheduler_detail::SigmaStepIndex index_;
};

}  // namespace a2a
