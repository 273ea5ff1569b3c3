#include "diffusion/schedulers/euler_ancestral_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

EulerAncestralDiscreteSchedulerOptions EulerAncestralDiscreteSchedulerOptions::from_json(const nlohmann::json& config) {
  EulerAncestralDiscreteSchedulerOptions options;
  options.read_common(config, "EulerAncestralDiscreteScheduler");
  return options;
}

EulerAncestralDiscreteScheduler::EulerAncestralDiscreteScheduler(EulerAncestralDiscreteSchedulerOptions options)
    : options_(std::move(options)) {
  using namespace scheduler_detail;
  // "sample" is accepted by diffusers' constructor but fails in step(); refuse it up front.
  require_prediction_type(class_name(), options_.prediction_type, {"epsilon", "v_prediction"});
  SigmaTable table = sigma_table(options_, class_name());
  alphas_cumprod_ = table.alphas_cumprod;
  train_sigmas_ = std::move(table.sigmas);
}

void EulerAncestralDiscreteScheduler::set_timesteps(int64_t num_inference_steps) {
  using namespace scheduler_detail;
  std::vector<float> timestep_values = spaced_timesteps_float(options_, num_inference_steps);
  std::vector<double> fp(train_sigmas_.begin(), train_sigmas_.end());
  sigma_values_.clear();
  for (float t : timestep_values) sigma_values_.push_back(static_cast<float>(np_interp_index(t, fp)));
  sigma_values_.push_back(0.0f);
  sigmas_ = at::tensor(sigma_values_, at::kFloat);
  timesteps_ = at::tensor(timestep_values, at::kFloat);
  index_.reset();
}

double EulerAncestralDiscreteScheduler::init_noise_sigma() const {
  if (sigma_values_.empty()) return 1.0;
  const float max_sigma = *std::max_element(sigma_values_.begin(), sigma_values_.end());
  if (options_.timestep_spacing == "linspace" || options_.timestep_spacing == "trailing") return max_sigma;
  return std::sqrt(max_sigma * max_sigma + 1.0f);
}

at::Tensor EulerAncestralDiscreteScheduler::scale_model_input(const at::Tensor& sample, double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.ensure(timesteps_, timestep, class_name());
  const float sigma = sigma_values_.at(i);
  return sample / std::sqrt(sigma * sigma + 1.0f);
}

SchedulerStepOutput EulerAncestralDiscreteScheduler::step(const at::Tensor& model_output, double timestep,
                                                          const at::Tensor& sample_in,
                                                          const std::optional<at::Generator>& generator) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.ensure(timesteps_, timestep, class_name());
  const float sigma = sigma_values_.at(i);
  at::Tensor sample = sample_in.to(at::kFloat);

  at::Tensor pred_original_sample;
  if (options_.prediction_type == "epsilon")
    pred_original_sample = sample - sigma * model_output;
  else
    pred_original_sample =
        model_output * (-sigma / std::sqrt(sigma * sigma + 1.0f)) + (sample / (sigma * sigma + 1.0f));

  const float sigma_from = sigma;
  const float sigma_to = sigma_values_.at(i + 1);
  const float sigma_up =
      std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) / (sigma_from * sigma_from));
  const float sigma_down = std::sqrt(sigma_to * sigma_to - sigma_up * sigma_up);

  at::Tensor derivative = (sample - pred_original_sample) / sigma;
  const float dt = sigma_down - sigma;
  at::Tensor prev_sample = sample + derivative * dt;
  at::Tensor noise = scheduler_detail::draw_noise(model_output.sizes(), generator, model_output.device());
  prev_sample = (prev_sample + noise * sigma_up).to(model_output.scalar_type());
  index_.advance();
  return {prev_sample, pred_original_sample};
}

at::Tensor EulerAncestralDiscreteScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise,
                                                      double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.for_add_noise(timesteps_, timestep, class_name());
  return original_samples + noise * sigma_values_.at(i);
}

}  // namespace a2a
