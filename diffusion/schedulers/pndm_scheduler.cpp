#include "diffusion/schedulers/pndm_scheduler.h"

#include "diffusion/schedulers/scheduler_config.h"

#include <cmath>

namespace a2a {

PNDMSchedulerOptions PNDMSchedulerOptions::from_json(const nlohmann::json& config) {
  const std::string name = "PNDMScheduler";
  PNDMSchedulerOptions options;
  options.read_common(config, name);
  // PNDMScheduler has no zero-SNR rescaling; diffusers ignores the key.
  options.rescale_betas_zero_snr = false;
  scheduler_config::read(config, "skip_prk_steps", options.skip_prk_steps, name);
  scheduler_config::read(config, "set_alpha_to_one", options.set_alpha_to_one, name);
  return options;
}

PNDMScheduler::PNDMScheduler(PNDMSchedulerOptions options) : options_(std::move(options)) {
  using namespace scheduler_detail;
  require_prediction_type(class_name(), options_.prediction_type, {"epsilon", "v_prediction"});
  at::Tensor betas = make_betas(options_, class_name());
  alphas_cumprod_ = at::cumprod(1.0 - betas, 0);
  alphas_cumprod_values_ = to_float_vector(alphas_cumprod_);
  final_alpha_cumprod_ = options_.set_alpha_to_one ? 1.0f : alphas_cumprod_values_[0];
}

void PNDMScheduler::set_timesteps(int64_t num_inference_steps) {
  // Ascending, as diffusers' _timesteps.
  std::vector<int64_t> ascending = scheduler_detail::spaced_timesteps(options_, num_inference_steps);
  std::reverse(ascending.begin(), ascending.end());
  const int64_t n = static_cast<int64_t>(ascending.size());
  const int64_t pndm_order = 4;

  std::vector<int64_t> plms;
  prk_timesteps_.clear();
  if (options_.skip_prk_steps) {
    // _timesteps[:-1] + _timesteps[-2:-1] + _timesteps[-1:], reversed.
    std::vector<int64_t> forward(ascending.begin(), ascending.end() - 1);
    if (n >= 2) forward.push_back(ascending[n - 2]);
    forward.push_back(ascending[n - 1]);
    plms.assign(forward.rbegin(), forward.rend());
  } else {
    if (n < pndm_order)
      throw_input_error("bad_steps", "PNDMScheduler without skip_prk_steps needs at least 4 inference steps, got " +
                                         std::to_string(n));
    const int64_t half = options_.num_train_timesteps / num_inference_steps / 2;
    std::vector<int64_t> prk;  // _timesteps[-4:].repeat(2) + tile([0, half], 4)
    for (int64_t i = n - pndm_order; i < n; ++i) {
      prk.push_back(ascending[i]);
      prk.push_back(ascending[i] + half);
    }
    // prk[:-1].repeat(2)[1:-1], reversed.
    std::vector<int64_t> repeated;
    for (size_t i = 0; i + 1 < prk.size(); ++i) {
      repeated.push_back(prk[i]);
      repeated.push_back(prk[i]);
    }
    std::vector<int64_t> trimmed(repeated.begin() + 1, repeated.end() - 1);
    prk_timesteps_.assign(trimmed.rbegin(), trimmed.rend());
    std::vector<int64_t> forward(ascending.begin(), ascending.end() - 3);
    plms.assign(forward.rbegin(), forward.rend());
  }
  std::vector<int64_t> all = prk_timesteps_;
  all.insert(all.end(), plms.begin(), plms.end());
  timesteps_ = at::tensor(all, at::kLong);
  num_inference_steps_ = num_inference_steps;
  ets_.clear();
  counter_ = 0;
  cur_model_output_ = at::Tensor();
  cur_sample_ = at::Tensor();
}

SchedulerStepOutput PNDMScheduler::step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                                        const std::optional<at::Generator>& generator) {
  (void)generator;
  scheduler_detail::require_timesteps_set(class_name(), timesteps_, num_inference_steps_);
  const int64_t t = static_cast<int64_t>(timestep);
  if (counter_ < static_cast<int64_t>(prk_timesteps_.size()) && !options_.skip_prk_steps)
    return step_prk(model_output, t, sample);
  return step_plms(model_output, t, sample);
}

SchedulerStepOutput PNDMScheduler::step_prk(const at::Tensor& model_output_in, int64_t timestep,
                                            const at::Tensor& sample) {
  const int64_t diff_to_prev = counter_ % 2 ? 0 : options_.num_train_timesteps / num_inference_steps_ / 2;
  const int64_t prev_timestep = timestep - diff_to_prev;
  timestep = prk_timesteps_.at(counter_ / 4 * 4);

  at::Tensor model_output = model_output_in;
  const auto accumulate = [&](double weight) {
    at::Tensor term = weight * model_output;
    cur_model_output_ = cur_model_output_.defined() ? cur_model_output_ + term : term;
  };
  if (counter_ % 4 == 0) {
    accumulate(1.0 / 6);
    ets_.push_back(model_output);
    cur_sample_ = sample;
  } else if ((counter_ - 1) % 4 == 0) {
    accumulate(1.0 / 3);
  } else if ((counter_ - 2) % 4 == 0) {
    accumulate(1.0 / 3);
  } else {
    model_output = cur_model_output_ + (1.0 / 6) * model_output;
    cur_model_output_ = at::Tensor();
  }
  const at::Tensor& cur_sample = cur_sample_.defined() ? cur_sample_ : sample;
  at::Tensor prev_sample = previous_sample(cur_sample, timestep, prev_timestep, model_output);
  ++counter_;
  return {prev_sample, at::Tensor()};
}

SchedulerStepOutput PNDMScheduler::step_plms(const at::Tensor& model_output_in, int64_t timestep,
                                             const at::Tensor& sample_in) {
  if (!options_.skip_prk_steps && ets_.size() < 3)
    throw_input_error("scheduler_state", "PNDMScheduler: PLMS steps need the 12 Runge-Kutta warm-up steps first");
  const int64_t step_ratio = options_.num_train_timesteps / num_inference_steps_;
  int64_t prev_timestep = timestep - step_ratio;
  if (counter_ != 1) {
    if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
    ets_.push_back(model_output_in);
  } else {
    prev_timestep = timestep;
    timestep = timestep + step_ratio;
  }

  at::Tensor model_output = model_output_in;
  at::Tensor sample = sample_in;
  const size_t n = ets_.size();
  if (n == 1 && counter_ == 0) {
    cur_sample_ = sample;
  } else if (n == 1 && counter_ == 1) {
    model_output = (model_output + ets_[n - 1]) / 2;
    sample = cur_sample_;
    cur_sample_ = at::Tensor();
  } else if (n == 2) {
    model_output = (3 * ets_[n - 1] - ets_[n - 2]) / 2;
  } else if (n == 3) {
    model_output = (23 * ets_[n - 1] - 16 * ets_[n - 2] + 5 * ets_[n - 3]) / 12;
  } else {
    model_output = (1.0 / 24) * (55 * ets_[n - 1] - 59 * ets_[n - 2] + 37 * ets_[n - 3] - 9 * ets_[n - 4]);
  }
  at::Tensor prev_sample = previous_sample(sample, timestep, prev_timestep, model_output);
  ++counter_;
  return {prev_sample, at::Tensor()};
}

at::Tensor PNDMScheduler::previous_sample(const at::Tensor& sample, int64_t timestep, int64_t prev_timestep,
                                          const at::Tensor& model_output_in) const {
  // Formula (9) of the PNDM paper.
  const float alpha_prod_t = alphas_cumprod_values_.at(timestep);
  const float alpha_prod_t_prev = prev_timestep >= 0 ? alphas_cumprod_values_.at(prev_timestep) : final_alpha_cumprod_;
  const float beta_prod_t = 1.0f - alpha_prod_t;
  const float beta_prod_t_prev = 1.0f - alpha_prod_t_prev;

  at::Tensor model_output = model_output_in;
  if (options_.prediction_type == "v_prediction")
    model_output = std::sqrt(alpha_prod_t) * model_output + std::sqrt(beta_prod_t) * sample;

  const float sample_coeff = std::sqrt(alpha_prod_t_prev / alpha_prod_t);
  const float model_output_denom_coeff =
      alpha_prod_t * std::sqrt(beta_prod_t_prev) + std::sqrt(alpha_prod_t * beta_prod_t * alpha_prod_t_prev);
  return sample_coeff * sample - (alpha_prod_t_prev - alpha_prod_t) * model_output / model_output_denom_coeff;
}

at::Tensor PNDMScheduler::add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) {
  const float alpha = alphas_cumprod_values_.at(static_cast<int64_t>(timestep));
  return std::sqrt(alpha) * original_samples + std::sqrt(1.0f - alpha) * noise;
}

}  // namespace a2a
