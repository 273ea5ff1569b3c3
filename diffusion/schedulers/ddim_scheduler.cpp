#include "diffusion/schedulers/ddim_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

DDIMSchedulerOptions DDIMSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = "DDIMScheduler";
  DDIMSchedulerOptions options;
  options.read_common(config, name);
  scheduler_config::read(config, "clip_sample", options.clip_sample, name);
  scheduler_config::read(config, "clip_sample_range", options.clip_sample_range, name);
  scheduler_config::read(config, "set_alpha_to_one", options.set_alpha_to_one, name);
  scheduler_config::read(config, "thresholding", options.thresholding, name);
  return options;
}

DDIMScheduler::DDIMScheduler(DDIMSchedulerOptions options) : options_(std::move(options)) {
  using namespace scheduler_detail;
  require_prediction_type(class_name(), options_.prediction_type, {"epsilon", "sample", "v_prediction"});
  require_no_thresholding(class_name(), options_.thresholding);
  at::Tensor betas = make_betas(options_, class_name());
  if (options_.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  alphas_cumprod_ = at::cumprod(1.0 - betas, 0);
  alphas_cumprod_values_ = to_float_vector(alphas_cumprod_);
  final_alpha_cumprod_ = options_.set_alpha_to_one ? 1.0f : alphas_cumprod_values_[0];
}

void DDIMScheduler::set_timesteps(int64_t num_inference_steps) {
  auto values = scheduler_detail::spaced_timesteps(options_, num_inference_steps);
  num_inference_steps_ = num_inference_steps;
  timesteps_ = at::tensor(values, at::kLong);
}

SchedulerStepOutput DDIMScheduler::step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                                        const std::optional<at::Generator>& generator) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  const int64_t t = static_cast<int64_t>(timestep);
  const int64_t prev_t = t - options_.num_train_timesteps / num_inference_steps_;

  const float alpha_prod_t = alphas_cumprod_values_.at(t);
  const float alpha_prod_t_prev = prev_t >= 0 ? alphas_cumprod_values_.at(prev_t) : final_alpha_cumprod_;
  const float beta_prod_t = 1.0f - alpha_prod_t;

  at::Tensor pred_original_sample;
  at::Tensor pred_epsilon;
  if (options_.prediction_type == "epsilon") {
    pred_original_sample = (sample - std::sqrt(beta_prod_t) * model_output) / std::sqrt(alpha_prod_t);
    pred_epsilon = model_output;
  } else if (options_.prediction_type == "sample") {
    pred_original_sample = model_output;
    pred_epsilon = (sample - std::sqrt(alpha_prod_t) * pred_original_sample) / std::sqrt(beta_prod_t);
  } else {
    pred_original_sample = std::sqrt(alpha_prod_t) * sample - std::sqrt(beta_prod_t) * model_output;
    pred_epsilon = std::sqrt(alpha_prod_t) * model_output + std::sqrt(beta_prod_t) * sample;
  }
  if (options_.clip_sample)
    pred_original_sample = pred_original_sample.clamp(-options_.clip_sample_range, options_.clip_sample_range);

  const float beta_prod_t_prev = 1.0f - alpha_prod_t_prev;
  const float variance = (beta_prod_t_prev / beta_prod_t) * (1.0f - alpha_prod_t / alpha_prod_t_prev);
  // eta is a Python float times a float32 tensor: the product is float32.
  const float std_dev_t = static_cast<float>(eta_) * std::sqrt(variance);

  if (use_clipped_model_output_)
    pred_epsilon = (sample - std::sqrt(alpha_prod_t) * pred_original_sample) / std::sqrt(beta_prod_t);

  at::Tensor pred_sample_direction = std::sqrt(1.0f - alpha_prod_t_prev - std_dev_t * std_dev_t) * pred_epsilon;
  at::Tensor prev_sample = std::sqrt(alpha_prod_t_prev) * pred_original_sample + pred_sample_direction;

  if (eta_ > 0) {
    at::Tensor variance_noise = scheduler_detail::draw_noise(model_output.sizes(), generator, model_output.device());
    prev_sample = prev_sample + std_dev_t * variance_noise;
  }
  return {prev_sample, pred_original_sample};
}

at::Tensor DDIMScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) {
  const float alpha = alphas_cumprod_values_.at(static_cast<int64_t>(timestep));
  return std::sqrt(alpha) * original_samples + std::sqrt(1.0f - alpha) * noise;
}

}  // namespace a2a
