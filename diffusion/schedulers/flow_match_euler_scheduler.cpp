#include "diffusion/schedulers/flow_match_euler_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

FlowMatchEulerDiscreteSchedulerOptions FlowMatchEulerDiscreteSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = "FlowMatchEulerDiscreteScheduler";
  FlowMatchEulerDiscreteSchedulerOptions options;
  scheduler_config::read(config, "num_train_timesteps", options.num_train_timesteps, name);
  scheduler_config::read(config, "shift", options.shift, name);
  scheduler_config::check_train_timesteps(options.num_train_timesteps, name);
  if (!(options.shift > 0)) throw_input_error("bad_scheduler_config", name + ": shift must be positive");
  return options;
}

FlowMatchEulerDiscreteScheduler::FlowMatchEulerDiscreteScheduler(FlowMatchEulerDiscreteSchedulerOptions options)
    : options_(std::move(options)) {
  const int64_t train = options_.num_train_timesteps;
  // float32, as diffusers builds the training table with torch.
  at::Tensor timesteps = at::tensor(scheduler_detail::np_linspace(1, static_cast<double>(train), train), at::kDouble)
                             .to(at::kFloat)
                             .flip(0);
  at::Tensor sigmas = timesteps / static_cast<double>(train);
  sigmas = options_.shift * sigmas / (1 + (options_.shift - 1) * sigmas);
  sigma_max_ = sigmas[0].item<float>();
  sigma_min_ = sigmas[-1].item<float>();
}

void FlowMatchEulerDiscreteScheduler::set_churn(double s_churn, double s_tmin, double s_tmax, double s_noise) {
  s_churn_ = s_churn;
  s_tmin_ = s_tmin;
  s_tmax_ = s_tmax;
  s_noise_ = s_noise;
}

void FlowMatchEulerDiscreteScheduler::set_timesteps(int64_t num_inference_steps) {
  if (num_inference_steps < 1)
    throw_input_error("bad_steps", class_name() + ": the number of inference steps must be at least 1");
  const double train = static_cast<double>(options_.num_train_timesteps);
  // float64 as numpy computes it, then float32.
  std::vector<double> t = scheduler_detail::np_linspace(static_cast<double>(sigma_max_) * train,
                                                        static_cast<double>(sigma_min_) * train, num_inference_steps);
  std::vector<float> sigma_f32;
  for (double value : t) {
    double sigma = value / train;
    sigma = options_.shift * sigma / (1 + (options_.shift - 1) * sigma);
    sigma_f32.push_back(static_cast<float>(sigma));
  }
  at::Tensor sigmas = at::tensor(sigma_f32, at::kFloat);
  timesteps_ = sigmas * train;
  sigma_values_ = sigma_f32;
  sigma_values_.push_back(0.0f);
  sigmas_ = at::tensor(sigma_values_, at::kFloat);
  index_.reset();
}

SchedulerStepOutput FlowMatchEulerDiscreteScheduler::step(const at::Tensor& model_output, double timestep,
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

  at::Tensor denoised = sample - model_output * sigma;
  at::Tensor derivative = (sample - denoised) / sigma_hat;
  const float dt = sigma_values_.at(i + 1) - sigma_hat;
  at::Tensor prev_sample = (sample + derivative * dt).to(model_output.scalar_type());
  index_.advance();
  return {prev_sample, denoised};
}

at::Tensor FlowMatchEulerDiscreteScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise,
                                                      double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, static_cast<int64_t>(sigma_values_.size()));
  const int64_t i = index_.for_add_noise(timesteps_, timestep, class_name());
  const float sigma = sigma_values_.at(i);
  return sigma * noise + (1.0f - sigma) * original_samples;
}

}  // namespace a2a
