#include "diffusion/schedulers/unipc_multistep_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace a2a {

namespace {

const char kUniPCName[] = "UniPCMultistepScheduler";

// diffusers' _sigma_to_alpha_sigma_t and lambda = log(alpha_t) - log(sigma_t), in float32 as torch computes
// them on 0-d tensors.
struct UniPCLevel {
  float alpha;
  float sigma;
  float lambda;
};

UniPCLevel unipc_level(float sigma, bool flow) {
  UniPCLevel level;
  if (flow) {
    level.alpha = 1.0f - sigma;
    level.sigma = sigma;
  } else {
    level.alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
    level.sigma = sigma * level.alpha;
  }
  level.lambda = std::log(level.alpha) - std::log(level.sigma);
  return level;
}

// torch.pow(x, k) in float32: 0 and 1 exact, 2 and 3 as repeated products, others std::pow.
float unipc_pow(float x, int64_t k) {
  if (k == 0) return 1.0f;
  if (k == 1) return x;
  if (k == 2) return x * x;
  if (k == 3) return x * x * x;
  return std::pow(x, static_cast<float>(k));
}

// The B(h) expansion UniP and UniC share: hh = -h for the x0 update (h for the noise update), R[k][j] =
// rks[j]^k and b[k] = k! h phi_{k+1}(hh) / B(h) for k = 0 .. order-1.
struct UniPCExpansion {
  float h_phi_1;
  float B_h;
  at::Tensor R;
  at::Tensor b;
};

UniPCExpansion unipc_expansion(float h, const std::vector<float>& rks, int64_t order, bool predict_x0, bool bh1) {
  UniPCExpansion e;
  const float hh = predict_x0 ? -h : h;
  e.h_phi_1 = std::expm1(hh);
  e.B_h = bh1 ? hh : std::expm1(hh);
  float h_phi_k = e.h_phi_1 / hh - 1.0f;
  // A Python int in diffusers; orders are at most 20, so (order + 1)! is exact in a double.
  double factorial = 1;
  std::vector<float> R;
  std::vector<float> b;
  for (int64_t k = 1; k <= order; ++k) {
    for (float r : rks) R.push_back(unipc_pow(r, k - 1));
    b.push_back(h_phi_k * static_cast<float>(factorial) / e.B_h);
    factorial *= static_cast<double>(k + 1);
    h_phi_k = h_phi_k / hh - static_cast<float>(1.0 / factorial);
  }
  e.R = at::tensor(R, at::kFloat).reshape({order, order});
  e.b = at::tensor(b, at::kFloat);
  return e;
}

std::vector<float> unipc_solve(const at::Tensor& R, const at::Tensor& b) {
  try {
    return scheduler_detail::to_float_vector(at::linalg_solve(R, b));
  } catch (const c10::Error& e) {
    throw_input_error("bad_steps", std::string(kUniPCName) +
                                       ": the UniPC coefficients cannot be solved for this schedule (repeated noise "
                                       "levels?); use fewer steps or a lower solver_order: " +
                                       e.what_without_backtrace());
  }
}

// sum_k rhos[k] * D1s[k]: diffusers' einsum("k,bkc...->bc...", rhos, D1s).
at::Tensor unipc_weighted_sum(const std::vector<float>& rhos, const std::vector<at::Tensor>& D1s) {
  at::Tensor sum = rhos[0] * D1s[0];
  for (size_t k = 1; k < D1s.size(); ++k) sum = sum + rhos[k] * D1s[k];
  return sum;
}

[[noreturn]] void unipc_reject(const std::string& message) {
  throw_input_error("bad_scheduler_config", std::string(kUniPCName) + ": " + message);
}

}  // namespace

UniPCMultistepSchedulerOptions UniPCMultistepSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = kUniPCName;
  UniPCMultistepSchedulerOptions options;
  options.read_common(config, name);
  using scheduler_config::read;
  read(config, "solver_order", options.solver_order, name);
  read(config, "thresholding", options.thresholding, name);
  read(config, "dynamic_thresholding_ratio", options.dynamic_thresholding_ratio, name);
  read(config, "sample_max_value", options.sample_max_value, name);
  read(config, "predict_x0", options.predict_x0, name);
  read(config, "solver_type", options.solver_type, name);
  read(config, "lower_order_final", options.lower_order_final, name);
  read(config, "disable_corrector", options.disable_corrector, name);
  read(config, "use_karras_sigmas", options.use_karras_sigmas, name);
  read(config, "use_exponential_sigmas", options.use_exponential_sigmas, name);
  read(config, "use_beta_sigmas", options.use_beta_sigmas, name);
  read(config, "use_flow_sigmas", options.use_flow_sigmas, name);
  read(config, "flow_shift", options.flow_shift, name);
  read(config, "final_sigmas_type", options.final_sigmas_type, name);
  // diffusers saves solver_p (another scheduler as the predictor) as null; it cannot be a JSON value.
  auto solver_p = config.find("solver_p");
  if (solver_p != config.end() && !solver_p->is_null())
    unipc_reject("solver_p (another scheduler as the predictor) is not supported; set it to null");
  return options;
}

UniPCMultistepScheduler::UniPCMultistepScheduler(UniPCMultistepSchedulerOptions options)
    : options_(std::move(options)) {
  // diffusers reads the DPM-Solver names of the solver as bh2.
  const std::string& type = options_.solver_type;
  if (type == "midpoint" || type == "heun" || type == "logrho") options_.solver_type = "bh2";
  validate();
  scheduler_detail::SigmaTable table = scheduler_detail::sigma_table(options_, class_name());
  alphas_cumprod_ = table.alphas_cumprod;
  train_sigmas_ = std::move(table.sigmas);
}

void UniPCMultistepScheduler::validate() const {
  const UniPCMultistepSchedulerOptions& o = options_;
  if (o.solver_order < 1 || o.solver_order > 20)
    unipc_reject("solver_order must be an integer in [1, 20], got " + std::to_string(o.solver_order));
  if (o.solver_type != "bh1" && o.solver_type != "bh2")
    unipc_reject("solver_type '" + o.solver_type + "' is not supported (bh1, bh2)");
  scheduler_detail::require_prediction_type(class_name(), o.prediction_type,
                                            {"epsilon", "sample", "v_prediction", "flow_prediction"});
  if (o.prediction_type == "flow_prediction" && !o.predict_x0)
    unipc_reject("prediction_type flow_prediction needs predict_x0 true");
  scheduler_detail::require_no_thresholding(class_name(), o.thresholding);
  if (o.timestep_spacing != "linspace" && o.timestep_spacing != "leading" && o.timestep_spacing != "trailing")
    unipc_reject("timestep_spacing '" + o.timestep_spacing +
                 "' is not supported: choose linspace, leading or trailing");
  if (o.steps_offset < 0 || o.steps_offset >= o.num_train_timesteps)
    unipc_reject("steps_offset must lie in [0, num_train_timesteps), got " + std::to_string(o.steps_offset));
  if (o.final_sigmas_type != "zero" && o.final_sigmas_type != "sigma_min")
    unipc_reject("final_sigmas_type '" + o.final_sigmas_type + "' is not supported (zero, sigma_min)");
  if (int(o.use_karras_sigmas) + int(o.use_exponential_sigmas) + int(o.use_beta_sigmas) > 1)
    unipc_reject("only one of use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas can be true");
  if (o.use_exponential_sigmas || o.use_beta_sigmas)
    unipc_reject("use_exponential_sigmas and use_beta_sigmas are not supported; use use_karras_sigmas or neither");
  if (o.use_karras_sigmas && o.use_flow_sigmas)
    unipc_reject("use_karras_sigmas and use_flow_sigmas cannot be combined");
  if (!(o.flow_shift > 0) || !std::isfinite(o.flow_shift))
    unipc_reject("flow_shift must be a positive number, got " + std::to_string(o.flow_shift));
  for (double step : o.disable_corrector)
    if (!std::isfinite(step) || std::floor(step) != step)
      unipc_reject("disable_corrector must list step indices (integers)");
  // At a zero final sigma lambda is +inf: diffusers' noise-prediction update and a multistep last step then
  // multiply infinity by zero, and its last sample is NaN.
  if (o.final_sigmas_type == "zero" && !o.predict_x0)
    unipc_reject("predict_x0 false needs final_sigmas_type 'sigma_min' (the last step to sigma 0 is not finite)");
  if (o.final_sigmas_type == "zero" && !o.lower_order_final && o.solver_order > 1)
    unipc_reject(
        "lower_order_final false with solver_order > 1 needs final_sigmas_type 'sigma_min' (a multistep last "
        "step to sigma 0 is not finite)");
}

std::vector<double> UniPCMultistepScheduler::schedule_timesteps(int64_t num_inference_steps) const {
  using namespace scheduler_detail;
  const int64_t train = options_.num_train_timesteps;
  std::vector<double> timesteps;
  if (options_.timestep_spacing == "linspace") {
    auto values = np_linspace(0, static_cast<double>(train - 1), num_inference_steps + 1);
    for (int64_t i = num_inference_steps; i >= 1; --i) timesteps.push_back(np_round(values[i]));
  } else if (options_.timestep_spacing == "leading") {
    const int64_t step_ratio = train / (num_inference_steps + 1);
    for (int64_t i = num_inference_steps; i >= 1; --i)
      timesteps.push_back(static_cast<double>(i * step_ratio + options_.steps_offset));
  } else {
    const double step_ratio = static_cast<double>(train) / static_cast<double>(num_inference_steps);
    for (double v : np_arange(static_cast<double>(train), 0, -step_ratio)) timesteps.push_back(np_round(v) - 1);
  }
  return timesteps;
}

// Wan 2.1's schedule: sigmas 1 - linspace(1, 1/T, N + 1), shifted by flow_shift, largest first, the final
// zero dropped; the timesteps are sigma * T (truncated to int64 later, as diffusers does).
std::vector<double> UniPCMultistepScheduler::flow_sigmas(int64_t num_inference_steps,
                                                         std::vector<double>& timesteps) const {
  const double train = static_cast<double>(options_.num_train_timesteps);
  const double shift = options_.flow_shift;
  const std::vector<double> alphas = scheduler_detail::np_linspace(1, 1 / train, num_inference_steps + 1);
  std::vector<double> sigmas;
  timesteps.clear();
  for (int64_t k = num_inference_steps; k >= 1; --k) {
    const double s = 1.0 - alphas[k];
    const double shifted = shift * s / (1 + (shift - 1) * s);
    // A float32 sigma of 1 (alpha 0) or 0 before the end makes lambda infinite inside the schedule.
    const float rounded = static_cast<float>(shifted);
    if (!(rounded > 0.0f && rounded < 1.0f))
      unipc_reject("flow_shift " + std::to_string(shift) + " puts a sigma of the " +
                   std::to_string(num_inference_steps) + "-step schedule at 0 or 1 in float32; use a moderate shift");
    sigmas.push_back(shifted);
    timesteps.push_back(shifted * train);
  }
  return sigmas;
}

void UniPCMultistepScheduler::set_timesteps(int64_t num_inference_steps) {
  using namespace scheduler_detail;
  const int64_t train = options_.num_train_timesteps;
  if (num_inference_steps < 1 || num_inference_steps > train)
    throw_input_error("bad_steps", class_name() + ": the number of inference steps must be in [1, " +
                                       std::to_string(train) + "], got " + std::to_string(num_inference_steps));
  std::vector<double> timesteps = schedule_timesteps(num_inference_steps);
  const bool sigma_min = options_.final_sigmas_type == "sigma_min";
  std::vector<double> sigmas;
  double sigma_last = 0;
  if (options_.use_karras_sigmas) {
    const std::vector<float> log_sigmas = np_log_table(train_sigmas_);
    sigmas = karras_sigmas(train_sigmas_.front(), train_sigmas_.back(), num_inference_steps);
    timesteps.clear();
    for (double s : sigmas) timesteps.push_back(np_round(sigma_to_t(s, log_sigmas)));
    if (sigma_min) sigma_last = sigmas.back();
  } else if (options_.use_flow_sigmas) {
    sigmas = flow_sigmas(num_inference_steps, timesteps);
    if (sigma_min) sigma_last = sigmas.back();
  } else {
    std::vector<double> fp(train_sigmas_.begin(), train_sigmas_.end());
    for (double t : timesteps) sigmas.push_back(np_interp_index(t, fp));
    // A float32 tensor expression in diffusers: the first training sigma.
    const float a0 = alphas_cumprod_[0].item<float>();
    if (sigma_min) sigma_last = std::sqrt((1.0f - a0) / a0);
  }
  sigma_values_.clear();
  for (double s : sigmas) sigma_values_.push_back(static_cast<float>(s));
  sigma_values_.push_back(static_cast<float>(sigma_last));
  sigmas_ = at::tensor(sigma_values_, at::kFloat);

  std::vector<int64_t> integer_timesteps;
  for (double t : timesteps) integer_timesteps.push_back(static_cast<int64_t>(t));
  timesteps_ = at::tensor(integer_timesteps, at::kLong);
  num_inference_steps_ = static_cast<int64_t>(integer_timesteps.size());
  model_outputs_.clear();
  last_sample_ = at::Tensor();
  lower_order_nums_ = 0;
  this_order_ = 0;
  index_.reset();
}

at::Tensor UniPCMultistepScheduler::convert_model_output(const at::Tensor& model_output,
                                                         const at::Tensor& sample) const {
  const float sigma = sigma_values_.at(index_.current());
  const UniPCLevel level = unipc_level(sigma, options_.use_flow_sigmas);
  const std::string& prediction = options_.prediction_type;
  if (options_.predict_x0) {
    if (prediction == "epsilon") return (sample - level.sigma * model_output) / level.alpha;
    if (prediction == "sample") return model_output;
    if (prediction == "v_prediction") return level.alpha * sample - level.sigma * model_output;
    return sample - sigma * model_output;  // flow_prediction: the velocity noise - x0
  }
  if (prediction == "epsilon") return model_output;
  if (prediction == "sample") return (sample - level.alpha * model_output) / level.sigma;
  return level.alpha * model_output + level.sigma * sample;
}

// UniP: from the sample at sigmas[i] to sigmas[i + 1] with the last `order` converted outputs.
at::Tensor UniPCMultistepScheduler::predictor_update(const at::Tensor& x, int64_t order) const {
  const int64_t i = index_.current();
  const bool flow = options_.use_flow_sigmas;
  const UniPCLevel t = unipc_level(sigma_values_.at(i + 1), flow);
  const UniPCLevel s0 = unipc_level(sigma_values_.at(i), flow);
  const float h = t.lambda - s0.lambda;
  const size_t n = model_outputs_.size();
  const at::Tensor& m0 = model_outputs_[n - 1];
  std::vector<float> rks;
  std::vector<at::Tensor> D1s;
  for (int64_t k = 1; k < order; ++k) {
    const float rk = (unipc_level(sigma_values_.at(i - k), flow).lambda - s0.lambda) / h;
    rks.push_back(rk);
    D1s.push_back((model_outputs_[n - 1 - k] - m0) / rk);
  }
  rks.push_back(1.0f);
  const UniPCExpansion e = unipc_expansion(h, rks, order, options_.predict_x0, options_.solver_type == "bh1");
  const at::Tensor x_t = options_.predict_x0 ? (t.sigma / s0.sigma) * x - (t.alpha * e.h_phi_1) * m0
                                             : (t.alpha / s0.alpha) * x - (t.sigma * e.h_phi_1) * m0;
  // No differences at order 1, so no correction. diffusers still multiplies a zero by B(h), which with bh1
  // is -inf at a zero final sigma and turns its last sample into NaN; the term is zero, so it is left out.
  if (D1s.empty()) return x_t;
  // Order 2 takes rho = 1/2 instead of solving the 1x1 system, as diffusers does.
  const std::vector<float> rhos =
      order == 2 ? std::vector<float>{0.5f}
                 : unipc_solve(e.R.slice(0, 0, order - 1).slice(1, 0, order - 1), e.b.slice(0, 0, order - 1));
  const float scale = (options_.predict_x0 ? t.alpha : t.sigma) * e.B_h;
  return x_t - scale * unipc_weighted_sum(rhos, D1s);
}

// UniC: redoes the last predictor step (from last_sample at sigmas[i - 1] to sigmas[i]) with the model's
// converted output at the predicted sample as one more difference.
at::Tensor UniPCMultistepScheduler::corrector_update(const at::Tensor& this_model_output, const at::Tensor& last_sample,
                                                     int64_t order) const {
  const int64_t i = index_.current();
  const bool flow = options_.use_flow_sigmas;
  const UniPCLevel t = unipc_level(sigma_values_.at(i), flow);
  const UniPCLevel s0 = unipc_level(sigma_values_.at(i - 1), flow);
  const float h = t.lambda - s0.lambda;
  const size_t n = model_outputs_.size();
  const at::Tensor& m0 = model_outputs_[n - 1];
  std::vector<float> rks;
  std::vector<at::Tensor> D1s;
  for (int64_t k = 1; k < order; ++k) {
    const float rk = (unipc_level(sigma_values_.at(i - (k + 1)), flow).lambda - s0.lambda) / h;
    rks.push_back(rk);
    D1s.push_back((model_outputs_[n - 1 - k] - m0) / rk);
  }
  rks.push_back(1.0f);
  const UniPCExpansion e = unipc_expansion(h, rks, order, options_.predict_x0, options_.solver_type == "bh1");
  const std::vector<float> rhos = order == 1 ? std::vector<float>{0.5f} : unipc_solve(e.R, e.b);
  const at::Tensor x_t = options_.predict_x0 ? (t.sigma / s0.sigma) * last_sample - (t.alpha * e.h_phi_1) * m0
                                             : (t.alpha / s0.alpha) * last_sample - (t.sigma * e.h_phi_1) * m0;
  at::Tensor correction = rhos.back() * (this_model_output - m0);
  if (!D1s.empty()) correction = unipc_weighted_sum(rhos, D1s) + correction;
  const float scale = (options_.predict_x0 ? t.alpha : t.sigma) * e.B_h;
  return x_t - scale * correction;
}

bool UniPCMultistepScheduler::corrector_disabled_after(int64_t step_index) const {
  const auto& steps = options_.disable_corrector;
  return std::find(steps.begin(), steps.end(), static_cast<double>(step_index)) != steps.end();
}

SchedulerStepOutput UniPCMultistepScheduler::step(const at::Tensor& model_output_in, double timestep,
                                                  const at::Tensor& sample_in,
                                                  const std::optional<at::Generator>& generator) {
  (void)generator;  // UniPC draws no noise
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  // A timestep not in the schedule maps to the last step, as in diffusers.
  const int64_t i = index_.ensure(timesteps_, timestep, class_name(), num_inference_steps_ - 1);
  if (i >= num_inference_steps_)
    throw_input_error("scheduler_state", class_name() + ": step called after the last of the " +
                                             std::to_string(num_inference_steps_) +
                                             " timesteps; call set_timesteps again");
  at::Tensor sample = sample_in.to(at::kFloat);
  const at::Tensor x0 = convert_model_output(model_output_in.to(at::kFloat), sample);
  if (i > 0 && last_sample_.defined() && !corrector_disabled_after(i - 1))
    sample = corrector_update(x0, last_sample_, this_order_);

  model_outputs_.push_back(x0);
  if (static_cast<int64_t>(model_outputs_.size()) > options_.solver_order) model_outputs_.erase(model_outputs_.begin());
  const int64_t order =
      options_.lower_order_final ? std::min(options_.solver_order, num_inference_steps_ - i) : options_.solver_order;
  this_order_ = std::min(order, lower_order_nums_ + 1);  // warm-up: lower orders until enough outputs exist

  last_sample_ = sample;
  at::Tensor prev_sample = predictor_update(sample, this_order_);
  if (lower_order_nums_ < options_.solver_order) ++lower_order_nums_;
  index_.advance();
  return {prev_sample.to(model_output_in.scalar_type()), at::Tensor()};
}

at::Tensor UniPCMultistepScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise,
                                              double timestep) {
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  // A timestep outside the schedule takes the last step, as diffusers' DPM-Solver/UniPC add_noise does.
  const int64_t i = index_.for_add_noise(timesteps_, timestep, class_name(), num_inference_steps_ - 1);
  const UniPCLevel level = unipc_level(sigma_values_.at(i), options_.use_flow_sigmas);
  return level.alpha * original_samples + level.sigma * noise;
}

}  // namespace a2a
