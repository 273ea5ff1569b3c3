#include "diffusion/schedulers/euler_discrete_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

EulerDiscreteSchedulerOptions EulerDiscreteSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = "EulerDiscreteScheduler";
  EulerDiscreteSchedulerOptions options;
  options.read_common(config, name);
  scheduler_config::read(config, "interpolation_type", options.interpolation_type, name);
  scheduler_config::read(config, "use_karras_sigmas", options.use_karras_sigmas, name);
  scheduler_config::read(config, "sigma_min", options.sigma_min, name);
  scheduler_config::read(config, "sigma_max", options.sigma_max, name);
  scheduler_config::read(config, "timestep_type", options.timestep_type, name);
  scheduler_config::read(config, "final_sigmas_type", options.final_sigmas_type, name);
  return options;
}

EulerDiscreteScheduler::EulerDiscreteScheduler(EulerDiscreteSchedulerOptions options) : options_(std::move(options)) {
  using namespace scheduler_detail;
  require_prediction_type(class_name(), options_.prediction_type,
                          {"epsilon", "v_prediction", "sample", "original_sample"});
  if (options_.interpolation_type != "linear" && options_.interpolation_type != "log_linear")
    throw_input_error("bad_scheduler_config", class_name() + ": interpolation_type '" + options_.interpolation_type +
                                                  "' is not supported (linear, log_linear)");
  if (options_.final_sigmas_type != "zero" && options_.final_sigmas_type != "sigma_min")
    throw_input_error("bad_scheduler_config", class_name() + ": final_sigmas_type '" + options_.final_sigmas_type +
                                                  "' is not supported (zero, sigma_min)");
  if (options_.timestep_type != "discrete" && options_.timestep_type != "continuous")
    throw_input_error("bad_scheduler_config", class_name() + ": timestep_type '" + options_.timestep_type +
                                                  "' is not supported (discrete, continuous)");
  SigmaTable table = sigma_table(options_, class_name());
  alphas_cumprod_ = table.alphas_cumprod;
  train_sigmas_ = std::move(table.sigmas);
}

void EulerDiscreteScheduler::set_churn(double s_churn, double s_tmin, double s_tmax, double s_noise) {
  s_churn_ = s_churn;
  s_tmin_ = s_tmin;
  s_tmax_ = s_tmax;
  s_noise_ = s_noise;
}

void EulerDiscreteScheduler::set_timesteps(int64_t num_inference_steps) {
  using namespace scheduler_detail;
  std::vector<float> timestep_values = spaced_timesteps_float(options_, num_inference_steps);
  std::vector<double> fp(train_sigmas_.begin(), train_sigmas_.end());
  const std::vector<float> log_sigmas = np_log_table(train_sigmas_);

  std::vector<double> sigmas;
  if (options_.interpolation_type == "linear") {
    for (float t : timestep_values) sigmas.push_back(np_interp_index(t, fp));
  } else {
    at::Tensor log_linear = at::linspace(static_cast<double>(std::log(train_sigmas_.back())),
                                         static_cast<double>(std::log(train_sigmas_.front())), num_inference_steps + 1,
                                         at::TensorOptions().dtype(at::kFloat))
                                .exp();
    for (float s : to_float_vector(log_linear)) sigmas.push_back(s);
  }

  std::vector<double> timesteps_double(timestep_values.begin(), timestep_values.end());
  if (options_.use_karras_sigmas) {
    const double sigma_min = options_.sigma_min ? *options_.sigma_min : sigmas.back();
    const double sigma_max = options_.sigma_max ? *options_.sigma_max : sigmas.front();
    sigmas = karras_sigmas(sigma_min, sigma_max, num_inference_steps);
    timesteps_double.clear();
    for (double s : sigmas) timesteps_double.push_back(sigma_to_t(s, log_sigmas));
  }

  const float sigma_last = options_.final_sigmas_type == "sigma_min"
                               ? std::sqrt((1.0f - alphas_cumprod_[0].item<float>()) / alphas_cumprod_[0].item<float>())
                               : 0.0f;
  sigma_values_.clear();
  for (double s : sigmas) sigma_values_.push_back(static_cast<float>(s));
  sigma_values_.push_back(sigma_last);
  sigmas_ = at::tensor(sigma_values_, at::kFloat);

  if (options_.timestep_type == "continuous" && options_.prediction_type == "v_prediction") {
    timesteps_ = 0.25 * sigmas_.slice(0, 0, -1).log();
  } else {
    std::vector<float> values;
    for (double t : timesteps_double) values.push_back(static_cast<float>(t));
    timesteps_ = at::tensor(values, at::kFloat);
  }
  index_.reset();
}

double EulerDiscreteScheduler::init_noise_sigma() const {
  if (sigma_values_.empty()) return 1.0;
  const float max_sigma = *std::max_element(sigma_values_.begin(), sigma_values_.end());
  if (options_.timestep_spacing == "linspace" || options_.timestep_spacing == "trailing") return max_sigma;
  return std::sqrt(max_sigma * max_sigma + 1.0f);
}

at::Tensor EulerDiscreteScheduler::scale_model_input(const at::Tensor& sample, double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.ensure(timesteps_, timestep, class_name());
  const float sigma = sigma_values_.at(i);
  return sample / std::sqrt(sigma * sigma + 1.0f);
}

SchedulerStepOutput EulerDiscreteScheduler::step(const at::Tensor& model_output, double timestep,
                                                 const at::Tensor& sample_in,
                                                 const std::optional<at::Generator>& generator) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.ensure(timesteps_, timestep, class_name());
  at::Tensor sample = sample_in.to(at::kFloat);
  const float sigma = sigma_values_.at(i);
  double gamma = 0.0;
  if (s_tmin_ <= sigma && sigma <= s_tmax_)
    gamma = std::min(s_churn_ / static_cast<double>(sigma_values_.size() - 1), std::sqrt(2.0) - 1);
  // Drawn even when unused (no churn), so the generator advances exactly as in diffusers.
  at::Tensor noise = scheduler_detail::draw_noise(model_output.sizes(), generator, model_output.device());
  at::Tensor eps = noise * s_noise_;
  const float sigma_hat = sigma * static_cast<float>(gamma + 1);
  if (gamma > 0) sample = sample + eps * std::sqrt(sigma_hat * sigma_hat - sigma * sigma);

  at::Tensor pred_original_sample;
  if (options_.prediction_type == "original_sample" || options_.prediction_type == "sample") {
    pred_original_sample = model_output;
  } else if (options_.prediction_type == "epsilon") {
    pred_original_sample = sample - sigma_hat * model_output;
  } else {
    pred_original_sample =
        model_output * (-sigma / std::sqrt(sigma * sigma + 1.0f)) + (sample / (sigma * sigma + 1.0f));
  }
  at::Tensor derivative = (sample - pred_original_sample) / sigma_hat;
  const float dt = sigma_values_.at(i + 1) - sigma_hat;
  at::Tensor prev_sample = (sample + derivative * dt).to(model_output.scalar_type());
  index_.advance();
  return {prev_sample, pred_original_sample};
}

at::Tensor EulerDiscreteScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise,
                                             double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.for_add_noise(timesteps_, timestep, class_name());
  return original_samples + noise * sigma_values_.at(i);
}

}  // namespace a2a
