#include "diffusion/schedulers/ddpm_scheduler.h"

#include "base/error.h"
#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

DDPMSchedulerOptions DDPMSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = "DDPMScheduler";
  DDPMSchedulerOptions options;
  options.read_common(config, name);
  scheduler_config::read(config, "variance_type", options.variance_type, name);
  scheduler_config::read(config, "clip_sample", options.clip_sample, name);
  scheduler_config::read(config, "clip_sample_range", options.clip_sample_range, name);
  scheduler_config::read(config, "thresholding", options.thresholding, name);
  return options;
}

DDPMScheduler::DDPMScheduler(DDPMSchedulerOptions options) : options_(std::move(options)) {
  using namespace scheduler_detail;
  require_prediction_type(class_name(), options_.prediction_type, {"epsilon", "sample", "v_prediction"});
  require_no_thresholding(class_name(), options_.thresholding);
  static const char* kVarianceTypes[] = {"fixed_small",     "fixed_small_log", "fixed_large",
                                         "fixed_large_log", "learned",         "learned_range"};
  bool known = false;
  for (const char* type : kVarianceTypes) known = known || options_.variance_type == type;
  if (!known)
    throw_input_error("bad_scheduler_config",
                      "DDPMScheduler: variance_type '" + options_.variance_type + "' is not supported");
  at::Tensor betas = make_betas(options_, class_name());
  if (options_.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  alphas_cumprod_ = at::cumprod(1.0 - betas, 0);
  alphas_cumprod_values_ = to_float_vector(alphas_cumprod_);
}

void DDPMScheduler::set_timesteps(int64_t num_inference_steps) {
  auto values = scheduler_detail::spaced_timesteps(options_, num_inference_steps);
  num_inference_steps_ = num_inference_steps;
  timesteps_ = at::tensor(values, at::kLong);
}

int64_t DDPMScheduler::previous_timestep(int64_t timestep) const {
  return timestep - options_.num_train_timesteps / num_inference_steps_;
}

float DDPMScheduler::alpha_prod(int64_t timestep) const {
  return timestep >= 0 ? alphas_cumprod_values_.at(timestep) : 1.0f;
}

at::Tensor DDPMScheduler::variance(int64_t timestep, const at::Tensor& predicted_variance) const {
  const int64_t prev_t = previous_timestep(timestep);
  const float alpha_prod_t = alpha_prod(timestep);
  const float alpha_prod_t_prev = alpha_prod(prev_t);
  const float current_beta_t = 1.0f - alpha_prod_t / alpha_prod_t_prev;
  float var = (1.0f - alpha_prod_t_prev) / (1.0f - alpha_prod_t) * current_beta_t;
  var = std::max(var, 1e-20f);
  const auto scalar = [](float v) { return at::scalar_tensor(v, at::kFloat); };
  const std::string& type = options_.variance_type;
  if (type == "fixed_small") return scalar(var);
  if (type == "fixed_small_log") return scalar(std::exp(0.5f * std::log(var)));
  if (type == "fixed_large") return scalar(current_beta_t);
  if (type == "fixed_large_log") return scalar(std::log(current_beta_t));
  if (type == "learned") return predicted_variance;
  // learned_range: interpolate the log variance between its bounds.
  const float min_log = std::log(var);
  const float max_log = std::log(current_beta_t);
  at::Tensor frac = (predicted_variance + 1) / 2;
  return frac * max_log + (1 - frac) * min_log;
}

SchedulerStepOutput DDPMScheduler::step(const at::Tensor& model_output_in, double timestep, const at::Tensor& sample,
                                        const std::optional<at::Generator>& generator) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  const int64_t t = static_cast<int64_t>(timestep);
  const int64_t prev_t = previous_timestep(t);

  at::Tensor model_output = model_output_in;
  at::Tensor predicted_variance;
  const bool learned = options_.variance_type == "learned" || options_.variance_type == "learned_range";
  if (model_output.size(1) == sample.size(1) * 2 && learned) {
    auto parts = model_output.split(sample.size(1), 1);
    model_output = parts[0];
    predicted_variance = parts[1];
  }

  const float alpha_prod_t = alpha_prod(t);
  const float alpha_prod_t_prev = alpha_prod(prev_t);
  const float beta_prod_t = 1.0f - alpha_prod_t;
  const float beta_prod_t_prev = 1.0f - alpha_prod_t_prev;
  const float current_alpha_t = alpha_prod_t / alpha_prod_t_prev;
  const float current_beta_t = 1.0f - current_alpha_t;

  at::Tensor pred_original_sample;
  if (options_.prediction_type == "epsilon") {
    pred_original_sample = (sample - std::sqrt(beta_prod_t) * model_output) / std::sqrt(alpha_prod_t);
  } else if (options_.prediction_type == "sample") {
    pred_original_sample = model_output;
  } else {
    pred_original_sample = std::sqrt(alpha_prod_t) * sample - std::sqrt(beta_prod_t) * model_output;
  }
  if (options_.clip_sample)
    pred_original_sample = pred_original_sample.clamp(-options_.clip_sample_range, options_.clip_sample_range);

  const float pred_original_sample_coeff = (std::sqrt(alpha_prod_t_prev) * current_beta_t) / beta_prod_t;
  const float current_sample_coeff = std::sqrt(current_alpha_t) * beta_prod_t_prev / beta_prod_t;
  at::Tensor prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample;

  if (t > 0) {
    at::Tensor variance_noise = scheduler_detail::draw_noise(model_output.sizes(), generator, model_output.device());
    at::Tensor var = variance(t, predicted_variance);
    at::Tensor noise_term;
    if (options_.variance_type == "fixed_small_log")
      noise_term = var * variance_noise;
    else if (options_.variance_type == "learned_range")
      noise_term = at::exp(0.5 * var) * variance_noise;
    else
      noise_term = var.pow(0.5) * variance_noise;
    prev_sample = prev_sample + noise_term;
  }
  return {prev_sample, pred_original_sample};
}

at::Tensor DDPMScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) {
  const float alpha = alphas_cumprod_values_.at(static_cast<int64_t>(timestep));
  return std::sqrt(alpha) * original_samples + std::sqrt(1.0f - alpha) * noise;
}

}  // namespace a2a
