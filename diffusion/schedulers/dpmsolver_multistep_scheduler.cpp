#include "diffusion/schedulers/dpmsolver_multistep_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

namespace {

// alpha_t, sigma_t and lambda_t of a sigma, in float32 as torch computes them on 0-d tensors.
struct NoiseLevel {
  float alpha;
  float sigma;
  float lambda;
};

NoiseLevel noise_level(float sigma) {
  NoiseLevel level;
  level.alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
  level.sigma = sigma * level.alpha;
  level.lambda = std::log(level.alpha) - std::log(level.sigma);
  return level;
}

}  // namespace

DPMSolverMultistepSchedulerOptions DPMSolverMultistepSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = "DPMSolverMultistepScheduler";
  DPMSolverMultistepSchedulerOptions options;
  options.read_common(config, name);
  using scheduler_config::read;
  read(config, "solver_order", options.solver_order, name);
  read(config, "thresholding", options.thresholding, name);
  read(config, "algorithm_type", options.algorithm_type, name);
  read(config, "solver_type", options.solver_type, name);
  read(config, "lower_order_final", options.lower_order_final, name);
  read(config, "euler_at_final", options.euler_at_final, name);
  read(config, "use_karras_sigmas", options.use_karras_sigmas, name);
  read(config, "use_lu_lambdas", options.use_lu_lambdas, name);
  read(config, "final_sigmas_type", options.final_sigmas_type, name);
  read(config, "lambda_min_clipped", options.lambda_min_clipped, name);
  read(config, "variance_type", options.variance_type, name);
  return options;
}

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(DPMSolverMultistepSchedulerOptions options)
    : options_(std::move(options)) {
  using namespace scheduler_detail;
  // diffusers maps the names of other solver families to their DPM-Solver equivalents.
  if (options_.algorithm_type == "deis") options_.algorithm_type = "dpmsolver++";
  if (options_.solver_type == "logrho" || options_.solver_type == "bh1" || options_.solver_type == "bh2")
    options_.solver_type = "midpoint";
  const std::string& algorithm = options_.algorithm_type;
  if (algorithm != "dpmsolver++" && algorithm != "sde-dpmsolver++" && algorithm != "dpmsolver" &&
      algorithm != "sde-dpmsolver")
    throw_input_error("bad_scheduler_config", class_name() + ": algorithm_type '" + algorithm +
                                                  "' is not supported (dpmsolver++, sde-dpmsolver++, dpmsolver, "
                                                  "sde-dpmsolver)");
  if (options_.solver_type != "midpoint" && options_.solver_type != "heun")
    throw_input_error("bad_scheduler_config",
                      class_name() + ": solver_type '" + options_.solver_type + "' is not supported (midpoint, heun)");
  if (options_.solver_order < 1 || options_.solver_order > 3)
    throw_input_error("bad_scheduler_config",
                      class_name() + ": solver_order must be 1, 2 or 3, got " + std::to_string(options_.solver_order));
  if (options_.solver_order == 3 && algorithm.rfind("sde-", 0) == 0)
    throw_input_error("bad_scheduler_config", class_name() + ": the SDE variants support solver_order 1 or 2");
  if (algorithm != "dpmsolver++" && algorithm != "sde-dpmsolver++" && options_.final_sigmas_type == "zero")
    throw_input_error("bad_scheduler_config", class_name() +
                                                  ": final_sigmas_type 'zero' is not supported for "
                                                  "algorithm_type '" +
                                                  algorithm + "'; choose sigma_min");
  if (options_.final_sigmas_type != "zero" && options_.final_sigmas_type != "sigma_min")
    throw_input_error("bad_scheduler_config", class_name() + ": final_sigmas_type '" + options_.final_sigmas_type +
                                                  "' is not supported (zero, sigma_min)");
  require_prediction_type(class_name(), options_.prediction_type, {"epsilon", "sample", "v_prediction"});
  require_no_thresholding(class_name(), options_.thresholding);

  SigmaTable table = sigma_table(options_, class_name());
  alphas_cumprod_ = table.alphas_cumprod;
  train_sigmas_ = std::move(table.sigmas);
  at::Tensor alpha_t = at::sqrt(alphas_cumprod_);
  at::Tensor sigma_t = at::sqrt(1 - alphas_cumprod_);
  lambda_t_ = to_float_vector(at::log(alpha_t) - at::log(sigma_t));
}

void DPMSolverMultistepScheduler::set_timesteps(int64_t num_inference_steps) {
  using namespace scheduler_detail;
  const int64_t train = options_.num_train_timesteps;
  if (num_inference_steps < 1 || num_inference_steps > train)
    throw_input_error("bad_steps", class_name() + ": the number of inference steps must be in [1, " +
                                       std::to_string(train) + "], got " + std::to_string(num_inference_steps));
  // Timesteps whose lambda is below lambda_min_clipped are cut from the start of the schedule.
  int64_t clipped_idx = 0;
  for (auto it = lambda_t_.rbegin(); it != lambda_t_.rend(); ++it)
    if (static_cast<double>(*it) < options_.lambda_min_clipped) ++clipped_idx;
  const int64_t last_timestep = train - clipped_idx;

  std::vector<double> timesteps;
  const std::string& spacing = options_.timestep_spacing;
  if (spacing == "linspace") {
    auto values = np_linspace(0, static_cast<double>(last_timestep - 1), num_inference_steps + 1);
    for (int64_t i = num_inference_steps; i >= 1; --i) timesteps.push_back(np_round(values[i]));
  } else if (spacing == "leading") {
    const int64_t step_ratio = last_timestep / (num_inference_steps + 1);
    for (int64_t i = num_inference_steps; i >= 1; --i)
      timesteps.push_back(static_cast<double>(i * step_ratio + options_.steps_offset));
  } else if (spacing == "trailing") {
    const double step_ratio = static_cast<double>(train) / static_cast<double>(num_inference_steps);
    for (double v : np_arange(static_cast<double>(last_timestep), 0, -step_ratio)) timesteps.push_back(np_round(v) - 1);
  } else {
    throw_input_error("bad_scheduler_config", class_name() + ": timestep_spacing '" + spacing +
                                                  "' is not supported: choose linspace, leading or trailing");
  }

  const std::vector<float> log_sigmas = np_log_table(train_sigmas_);
  std::vector<double> sigmas;
  if (options_.use_karras_sigmas) {
    sigmas = karras_sigmas(train_sigmas_.front(), train_sigmas_.back(), num_inference_steps);
    timesteps.clear();
    for (double s : sigmas) timesteps.push_back(np_round(sigma_to_t(s, log_sigmas)));
  } else if (options_.use_lu_lambdas) {
    // Uniform steps in log-SNR between the extremes of the (flipped) log-sigma table.
    const double lambda_min = log_sigmas.front();
    const double lambda_max = log_sigmas.back();
    for (double r : np_linspace(0, 1, num_inference_steps))
      sigmas.push_back(std::exp(lambda_max + r * (lambda_min - lambda_max)));
    timesteps.clear();
    for (double s : sigmas) timesteps.push_back(np_round(sigma_to_t(s, log_sigmas)));
  } else {
    std::vector<double> fp(train_sigmas_.begin(), train_sigmas_.end());
    for (double t : timesteps) sigmas.push_back(np_interp_index(t, fp));
  }

  const float sigma_last = options_.final_sigmas_type == "sigma_min"
                               ? std::sqrt((1.0f - alphas_cumprod_[0].item<float>()) / alphas_cumprod_[0].item<float>())
                               : 0.0f;
  sigma_values_.clear();
  for (double s : sigmas) sigma_values_.push_back(static_cast<float>(s));
  sigma_values_.push_back(sigma_last);
  sigmas_ = at::tensor(sigma_values_, at::kFloat);

  std::vector<int64_t> integer_timesteps;
  for (double t : timesteps) integer_timesteps.push_back(static_cast<int64_t>(t));
  timesteps_ = at::tensor(integer_timesteps, at::kLong);
  num_inference_steps_ = static_cast<int64_t>(integer_timesteps.size());
  model_outputs_.assign(options_.solver_order, at::Tensor());
  lower_order_nums_ = 0;
  index_.reset();
}

at::Tensor DPMSolverMultistepScheduler::convert_model_output(const at::Tensor& model_output_in,
                                                             const at::Tensor& sample) const {
  const NoiseLevel level = noise_level(sigma_values_.at(index_.current()));
  const std::string& prediction = options_.prediction_type;
  const bool learned_variance =
      options_.variance_type && (*options_.variance_type == "learned" || *options_.variance_type == "learned_range");
  if (options_.algorithm_type == "dpmsolver++" || options_.algorithm_type == "sde-dpmsolver++") {
    // The data prediction x0.
    if (prediction == "epsilon") {
      at::Tensor model_output = learned_variance ? model_output_in.slice(1, 0, 3) : model_output_in;
      return (sample - level.sigma * model_output) / level.alpha;
    }
    if (prediction == "sample") return model_output_in;
    return level.alpha * sample - level.sigma * model_output_in;
  }
  // The noise prediction epsilon.
  if (prediction == "epsilon") return learned_variance ? model_output_in.slice(1, 0, 3) : model_output_in;
  if (prediction == "sample") return (sample - level.alpha * model_output_in) / level.sigma;
  return level.alpha * model_output_in + level.sigma * sample;
}

at::Tensor DPMSolverMultistepScheduler::first_order_update(const at::Tensor& model_output, const at::Tensor& sample,
                                                           const at::Tensor& noise) const {
  const int64_t i = index_.current();
  const NoiseLevel t = noise_level(sigma_values_.at(i + 1));
  const NoiseLevel s = noise_level(sigma_values_.at(i));
  const float h = t.lambda - s.lambda;
  const std::string& algorithm = options_.algorithm_type;
  if (algorithm == "dpmsolver++")
    return (t.sigma / s.sigma) * sample - (t.alpha * (std::exp(-h) - 1.0f)) * model_output;
  if (algorithm == "dpmsolver") return (t.alpha / s.alpha) * sample - (t.sigma * (std::exp(h) - 1.0f)) * model_output;
  if (algorithm == "sde-dpmsolver++")
    return (t.sigma / s.sigma * std::exp(-h)) * sample + (t.alpha * (1 - std::exp(-2.0f * h))) * model_output +
           t.sigma * std::sqrt(1.0f - std::exp(-2 * h)) * noise;
  return (t.alpha / s.alpha) * sample - 2.0f * (t.sigma * (std::exp(h) - 1.0f)) * model_output +
         t.sigma * std::sqrt(std::exp(2 * h) - 1.0f) * noise;
}

at::Tensor DPMSolverMultistepScheduler::second_order_update(const at::Tensor& sample, const at::Tensor& noise) const {
  const int64_t i = index_.current();
  const NoiseLevel t = noise_level(sigma_values_.at(i + 1));
  const NoiseLevel s0 = noise_level(sigma_values_.at(i));
  const NoiseLevel s1 = noise_level(sigma_values_.at(i - 1));
  const size_t n = model_outputs_.size();
  const at::Tensor& m0 = model_outputs_[n - 1];
  const at::Tensor& m1 = model_outputs_[n - 2];
  const float h = t.lambda - s0.lambda;
  const float h_0 = s0.lambda - s1.lambda;
  const float r0 = h_0 / h;
  const at::Tensor& D0 = m0;
  at::Tensor D1 = (1.0f / r0) * (m0 - m1);
  const bool midpoint = options_.solver_type == "midpoint";
  const std::string& algorithm = options_.algorithm_type;
  if (algorithm == "dpmsolver++") {
    if (midpoint)
      return (t.sigma / s0.sigma) * sample - (t.alpha * (std::exp(-h) - 1.0f)) * D0 -
             0.5f * (t.alpha * (std::exp(-h) - 1.0f)) * D1;
    return (t.sigma / s0.sigma) * sample - (t.alpha * (std::exp(-h) - 1.0f)) * D0 +
           (t.alpha * ((std::exp(-h) - 1.0f) / h + 1.0f)) * D1;
  }
  if (algorithm == "dpmsolver") {
    if (midpoint)
      return (t.alpha / s0.alpha) * sample - (t.sigma * (std::exp(h) - 1.0f)) * D0 -
             0.5f * (t.sigma * (std::exp(h) - 1.0f)) * D1;
    return (t.alpha / s0.alpha) * sample - (t.sigma * (std::exp(h) - 1.0f)) * D0 -
           (t.sigma * ((std::exp(h) - 1.0f) / h - 1.0f)) * D1;
  }
  if (algorithm == "sde-dpmsolver++") {
    at::Tensor common = (t.sigma / s0.sigma * std::exp(-h)) * sample + (t.alpha * (1 - std::exp(-2.0f * h))) * D0;
    at::Tensor correction = midpoint ? 0.5f * (t.alpha * (1 - std::exp(-2.0f * h))) * D1
                                     : (t.alpha * ((1.0f - std::exp(-2.0f * h)) / (-2.0f * h) + 1.0f)) * D1;
    return common + correction + t.sigma * std::sqrt(1.0f - std::exp(-2 * h)) * noise;
  }
  at::Tensor common = (t.alpha / s0.alpha) * sample - 2.0f * (t.sigma * (std::exp(h) - 1.0f)) * D0;
  at::Tensor correction =
      midpoint ? (t.sigma * (std::exp(h) - 1.0f)) * D1 : 2.0f * (t.sigma * ((std::exp(h) - 1.0f) / h - 1.0f)) * D1;
  return common - correction + t.sigma * std::sqrt(std::exp(2 * h) - 1.0f) * noise;
}

at::Tensor DPMSolverMultistepScheduler::third_order_update(const at::Tensor& sample) const {
  const int64_t i = index_.current();
  const NoiseLevel t = noise_level(sigma_values_.at(i + 1));
  const NoiseLevel s0 = noise_level(sigma_values_.at(i));
  const NoiseLevel s1 = noise_level(sigma_values_.at(i - 1));
  const NoiseLevel s2 = noise_level(sigma_values_.at(i - 2));
  const size_t n = model_outputs_.size();
  const at::Tensor& m0 = model_outputs_[n - 1];
  const at::Tensor& m1 = model_outputs_[n - 2];
  const at::Tensor& m2 = model_outputs_[n - 3];
  const float h = t.lambda - s0.lambda;
  const float h_0 = s0.lambda - s1.lambda;
  const float h_1 = s1.lambda - s2.lambda;
  const float r0 = h_0 / h;
  const float r1 = h_1 / h;
  const at::Tensor& D0 = m0;
  at::Tensor D1_0 = (1.0f / r0) * (m0 - m1);
  at::Tensor D1_1 = (1.0f / r1) * (m1 - m2);
  at::Tensor D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1);
  at::Tensor D2 = (1.0f / (r0 + r1)) * (D1_0 - D1_1);
  if (options_.algorithm_type == "dpmsolver++")
    return (t.sigma / s0.sigma) * sample - (t.alpha * (std::exp(-h) - 1.0f)) * D0 +
           (t.alpha * ((std::exp(-h) - 1.0f) / h + 1.0f)) * D1 -
           (t.alpha * ((std::exp(-h) - 1.0f + h) / (h * h) - 0.5f)) * D2;
  return (t.alpha / s0.alpha) * sample - (t.sigma * (std::exp(h) - 1.0f)) * D0 -
         (t.sigma * ((std::exp(h) - 1.0f) / h - 1.0f)) * D1 -
         (t.sigma * ((std::exp(h) - 1.0f - h) / (h * h) - 0.5f)) * D2;
}

SchedulerStepOutput DPMSolverMultistepScheduler::step(const at::Tensor& model_output_in, double timestep,
                                                      const at::Tensor& sample_in,
                                                      const std::optional<at::Generator>& generator) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  // A timestep not in the schedule maps to the last step, as in diffusers.
  const int64_t i = index_.ensure(timesteps_, timestep, class_name(), num_inference_steps_ - 1);
  const int64_t count = num_inference_steps_;
  const bool lower_order_final =
      i == count - 1 &&
      (options_.euler_at_final || (options_.lower_order_final && count < 15) || options_.final_sigmas_type == "zero");
  const bool lower_order_second = i == count - 2 && options_.lower_order_final && count < 15;

  at::Tensor model_output = convert_model_output(model_output_in, sample_in);
  for (int64_t k = 0; k + 1 < options_.solver_order; ++k) model_outputs_[k] = model_outputs_[k + 1];
  model_outputs_.back() = model_output;

  at::Tensor sample = sample_in.to(at::kFloat);
  at::Tensor noise;
  if (options_.algorithm_type.rfind("sde-", 0) == 0)
    noise = scheduler_detail::draw_noise(model_output.sizes(), generator, model_output.device());

  at::Tensor prev_sample;
  if (options_.solver_order == 1 || lower_order_nums_ < 1 || lower_order_final)
    prev_sample = first_order_update(model_output, sample, noise);
  else if (options_.solver_order == 2 || lower_order_nums_ < 2 || lower_order_second)
    prev_sample = second_order_update(sample, noise);
  else
    prev_sample = third_order_update(sample);
  if (lower_order_nums_ < options_.solver_order) ++lower_order_nums_;
  index_.advance();
  return {prev_sample.to(model_output.scalar_type()), at::Tensor()};
}

at::Tensor DPMSolverMultistepScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise,
                                                  double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  // A timestep outside the schedule takes the last step, as diffusers' DPM-Solver/UniPC add_noise does.
  const int64_t i = index_.for_add_noise(timesteps_, timestep, class_name(), num_inference_steps_ - 1);
  const NoiseLevel level = noise_level(sigma_values_.at(i));
  return level.alpha * original_samples + level.sigma * noise;
}

}  // namespace a2a
