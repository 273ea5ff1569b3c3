// UniPCMultistepScheduler: parity with the diffusers 0.33.1 trajectory of scheduler_unipc_multistep (Wan 2.1's
// flow configuration), the flow-sigma schedule against its formula, exactness on an ideal denoiser, and the
// configuration errors.
#include "base/error.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/schedulers/unipc_multistep_scheduler.h"
#include "test_support.h"
#include "weights/safetensors.h"

#include <cmath>
#include <iomanip>

namespace {

using a2a::test::fixture_path;

constexpr const char* kUniPCFixture = "scheduler_unipc_multistep";

// Compares and prints the max abs difference with the README's bound for trajectories.
void unipc_check_tensor(const std::string& name, const at::Tensor& ours, const at::Tensor& ref, double tolerance) {
  INFO(name);
  REQUIRE(ours.sizes() == ref.sizes());
  const double abs_diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>();
  const double bound = tolerance * std::max(1.0, ref.to(at::kDouble).abs().max().item<double>());
  std::cout << kUniPCFixture << " " << name << ": max abs diff " << std::setprecision(3) << abs_diff << " (bound "
            << bound << ")" << std::endl;
  CHECK(abs_diff <= bound);
}

std::vector<int64_t> unipc_int_vector(const at::Tensor& tensor) {
  at::Tensor values = tensor.to(at::kLong).contiguous();
  return std::vector<int64_t>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel());
}

// Runs every timestep with model_output(i, t, sample) as the denoiser; returns the samples after each step.
template <class Model>
std::vector<at::Tensor> unipc_run(a2a::Scheduler& scheduler, int64_t steps, at::Tensor sample, Model model) {
  scheduler.set_timesteps(steps);
  std::vector<at::Tensor> samples;
  for (int64_t i = 0; i < scheduler.timesteps().size(0); ++i) {
    const double t = scheduler.timesteps()[i].item<double>();
    sample = scheduler.step(model(i, sample), t, scheduler.scale_model_input(sample, t)).prev_sample;
    samples.push_back(sample);
  }
  return samples;
}

nlohmann::json unipc_wan_config(double shift) {
  return {{"prediction_type", "flow_prediction"}, {"use_flow_sigmas", true}, {"flow_shift", shift}};
}

}  // namespace

TEST_CASE("unipc: the scheduler_unipc_multistep trajectory matches diffusers", "[unipc]") {
  A2A_REQUIRE_FIXTURE(std::string(kUniPCFixture) + "/meta.json");
  const std::string dir = fixture_path(kUniPCFixture);
  const nlohmann::json meta = a2a::test::read_json(dir + "/meta.json");
  const nlohmann::json config = a2a::read_scheduler_config(dir + "/scheduler_config.json");
  auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  REQUIRE(meta["step_kwargs"].empty());
  REQUIRE(meta["noise_drawn_at_steps"].empty());

  auto scheduler = a2a::make_scheduler("", config);
  REQUIRE(meta["class"].get<std::string>() == "diffusers." + scheduler->class_name());
  scheduler->set_timesteps(meta["num_inference_steps"].get<int64_t>());

  const at::Tensor& timesteps = scheduler->timesteps();
  REQUIRE(timesteps.scalar_type() == outputs.at("timesteps").scalar_type());
  REQUIRE(timesteps.size(0) == meta["num_steps_in_trajectory"].get<int64_t>());
  CHECK(unipc_int_vector(timesteps) == unipc_int_vector(outputs.at("timesteps")));
  CHECK(unipc_int_vector(timesteps) == meta["timesteps_list"].get<std::vector<int64_t>>());
  // sigmas: rtol 1e-5 (meta.json), the final one (zero or sigma_min) absolutely.
  const at::Tensor& ref_sigmas = outputs.at("sigmas");
  REQUIRE(scheduler->sigmas().sizes() == ref_sigmas.sizes());
  const at::Tensor head = scheduler->sigmas().slice(0, 0, -1).to(at::kDouble);
  const at::Tensor ref_head = ref_sigmas.slice(0, 0, -1).to(at::kDouble);
  const double sigma_rel = ((head - ref_head).abs() / ref_head.abs().clamp_min(1e-30)).max().item<double>();
  std::cout << kUniPCFixture << " sigmas: max relative diff " << sigma_rel << " (bound 1e-5)" << std::endl;
  CHECK(sigma_rel <= 1e-5);
  CHECK(std::abs(scheduler->sigmas()[-1].item<double>() - ref_sigmas[-1].item<double>()) <= 1e-6);
  unipc_check_tensor("alphas_cumprod", scheduler->alphas_cumprod(), outputs.at("alphas_cumprod"), 1e-5);
  CHECK(scheduler->init_noise_sigma() == meta["init_noise_sigma"].get<double>());

  at::Tensor sample = inputs.at("initial_noise") * scheduler->init_noise_sigma();
  unipc_check_tensor("sample_0", sample, outputs.at("sample_0"), 1e-5);
  for (int64_t i = 0; i < timesteps.size(0); ++i) {
    const std::string index = std::to_string(i);
    const double t = timesteps[i].item<double>();
    unipc_check_tensor("scaled_model_input_" + index, scheduler->scale_model_input(sample, t),
                       outputs.at("scaled_model_input_" + index), 1e-5);
    a2a::SchedulerStepOutput result = scheduler->step(inputs.at("model_output_" + index), t, sample);
    sample = result.prev_sample;
    unipc_check_tensor("prev_sample_" + index, sample, outputs.at("prev_sample_" + index), 1e-5);
  }
  CHECK_FALSE(outputs.count("prev_sample_" + std::to_string(timesteps.size(0))));
}

TEST_CASE("unipc: the short name and the class name both make it", "[unipc]") {
  CHECK(a2a::make_scheduler("unipc", nlohmann::json::object())->class_name() == "UniPCMultistepScheduler");
  CHECK(a2a::make_scheduler("UniPCMultistepScheduler", nlohmann::json::object())->class_name() ==
        "UniPCMultistepScheduler");
  const auto names = a2a::scheduler_names();
  CHECK(std::find(names.begin(), names.end(), "unipc") != names.end());
  // diffusers' defaults: linspace spacing over N + 1 points, the last dropped.
  auto defaults = a2a::make_scheduler("unipc", nlohmann::json::object());
  defaults->set_timesteps(4);
  CHECK(unipc_int_vector(defaults->timesteps()) == std::vector<int64_t>{999, 749, 500, 250});
  CHECK(defaults->sigmas()[-1].item<double>() == 0.0);
}

TEST_CASE("unipc: flow sigmas follow Wan 2.1's formula", "[unipc]") {
  const int64_t train = 1000;
  for (int64_t steps : {1, 3, 5}) {
    INFO(steps << " steps");
    auto scheduler = a2a::make_scheduler("unipc", unipc_wan_config(3.0));
    scheduler->set_timesteps(steps);
    REQUIRE(scheduler->timesteps().scalar_type() == at::kLong);
    REQUIRE(scheduler->sigmas().size(0) == steps + 1);
    // sigma_k = 3 s / (1 + 2 s) with s = 1 - alpha, alpha = linspace(1, 1/T, N + 1) from its far end.
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t j = steps - k;
      const double alpha = j == steps ? 1.0 / train : 1.0 + static_cast<double>(j) * ((1.0 / train - 1.0) / steps);
      const double s = 1.0 - alpha;
      const double sigma = 3.0 * s / (1.0 + 2.0 * s);
      CHECK(scheduler->sigmas()[k].item<float>() == static_cast<float>(sigma));
      CHECK(scheduler->timesteps()[k].item<int64_t>() == static_cast<int64_t>(sigma * train));
    }
    CHECK(scheduler->sigmas()[-1].item<double>() == 0.0);
    // The first sigma is the shifted 1 - 1/T for every step count.
    CHECK(scheduler->sigmas()[0].item<float>() == static_cast<float>(3 * 0.999 / (1 + 2 * 0.999)));
  }
  // Hand values for 2 steps, shift 3: s = 0.999 and 0.4995.
  auto two = a2a::make_scheduler("unipc", unipc_wan_config(3.0));
  two->set_timesteps(2);
  CHECK(unipc_int_vector(two->timesteps()) == std::vector<int64_t>{999, 749});
  CHECK(two->sigmas()[1].item<double>() == Approx(1.4985 / 1.999).epsilon(1e-7));
  // sigma_min repeats the last sigma instead of appending zero.
  nlohmann::json config = unipc_wan_config(5.0);
  config["final_sigmas_type"] = "sigma_min";
  auto last = a2a::make_scheduler("unipc", config);
  last->set_timesteps(4);
  CHECK(last->sigmas()[-1].item<float>() == last->sigmas()[-2].item<float>());
}

TEST_CASE("unipc: an ideal denoiser stays on its path and ends on the clean sample", "[unipc]") {
  // When every x0 prediction is the same x0, each UniP/UniC update gives alpha_t x0 + sigma_t noise exactly
  // (the differences D1 vanish): for every order, solver type and prediction type.
  const at::Tensor x0 = at::linspace(-1, 1, 48).reshape({1, 3, 4, 4});
  const at::Tensor noise = at::linspace(1.5, -0.5, 48).reshape({1, 3, 4, 4});
  for (const char* solver_type : {"bh1", "bh2"}) {
    for (int64_t order : {1, 2, 3}) {
      INFO(solver_type << " order " << order);
      nlohmann::json flow = unipc_wan_config(3.0);
      flow["solver_type"] = solver_type;
      flow["solver_order"] = order;
      auto scheduler = a2a::make_scheduler("unipc", flow);
      scheduler->set_timesteps(6);
      const float s0 = scheduler->sigmas()[0].item<float>();
      auto path =
          unipc_run(*scheduler, 6, (1 - s0) * x0 + s0 * noise, [&](int64_t, const at::Tensor&) { return noise - x0; });
      for (size_t i = 0; i + 1 < path.size(); ++i) {
        const float s = scheduler->sigmas()[static_cast<int64_t>(i) + 1].item<float>();
        CHECK(a2a::test::scaled_error(path[i], (1 - s) * x0 + s * noise) < 1e-5);
      }
      CHECK(a2a::test::scaled_error(path.back(), x0) < 1e-5);

      nlohmann::json vp = {{"solver_type", solver_type}, {"solver_order", order}};
      auto eps = a2a::make_scheduler("unipc", vp);
      eps->set_timesteps(6);
      const double sigma_max = eps->sigmas()[0].item<double>();
      const at::Tensor start = (x0 + sigma_max * noise) / std::sqrt(sigma_max * sigma_max + 1);
      auto eps_path = unipc_run(*eps, 6, start, [&](int64_t, const at::Tensor&) { return noise; });
      // At sigma_max ~ 157 the float32 start holds x0 only to ~2e-5 (order 1 shows the same), hence 1e-4.
      CHECK(a2a::test::scaled_error(eps_path.back(), x0) < 1e-4);
    }
  }
}

TEST_CASE("unipc: epsilon and v_prediction run and differ; the corrector and the orders matter", "[unipc]") {
  const at::Tensor start = at::linspace(-2, 2, 64).reshape({1, 4, 4, 4});
  auto model = [](int64_t i, const at::Tensor& sample) { return 0.5 * sample + 0.1 * static_cast<double>(i); };
  auto run = [&](const nlohmann::json& config) {
    auto scheduler = a2a::make_scheduler("unipc", config);
    auto path = unipc_run(*scheduler, 8, start, model);
    for (const auto& sample : path) REQUIRE(at::isfinite(sample).all().item<bool>());
    return path;
  };
  const nlohmann::json sd = {{"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}};
  nlohmann::json v = sd;
  v["prediction_type"] = "v_prediction";
  const auto eps_path = run(sd);
  const auto v_path = run(v);
  CHECK_FALSE(at::allclose(eps_path.back(), v_path.back()));
  // disable_corrector [1] skips only the corrector of step 2 (which corrects the result of step 1).
  nlohmann::json no_corrector = sd;
  no_corrector["disable_corrector"] = {1};
  const auto skipped = run(no_corrector);
  CHECK(at::equal(skipped[1], eps_path[1]));
  CHECK_FALSE(at::allclose(skipped[2], eps_path[2]));
  // Orders 1 and 3, bh1, Karras sigmas, leading spacing and the noise-prediction update all run.
  for (const nlohmann::json& extra :
       {nlohmann::json{{"solver_order", 1}}, nlohmann::json{{"solver_order", 3}, {"solver_type", "bh1"}},
        nlohmann::json{{"use_karras_sigmas", true}, {"solver_order", 3}},
        nlohmann::json{{"timestep_spacing", "leading"}, {"steps_offset", 1}},
        nlohmann::json{{"timestep_spacing", "trailing"}},
        nlohmann::json{{"predict_x0", false}, {"final_sigmas_type", "sigma_min"}}}) {
    INFO(extra.dump());
    nlohmann::json config = sd;
    config.update(extra);
    CHECK_FALSE(at::allclose(run(config).back(), eps_path.back()));
  }
}

TEST_CASE("unipc: bad configurations and calls are errors with codes", "[unipc]") {
  const std::vector<std::pair<nlohmann::json, std::string>> bad = {
      {{{"solver_order", 0}}, "solver_order"},
      {{{"solver_order", 21}}, "solver_order"},
      {{{"solver_order", "two"}}, "solver_order"},
      {{{"solver_type", "bh3"}}, "solver_type"},
      {{{"prediction_type", "flow"}}, "prediction_type"},
      {{{"prediction_type", "flow_prediction"}, {"predict_x0", false}, {"final_sigmas_type", "sigma_min"}},
       "predict_x0"},
      {{{"thresholding", true}}, "thresholding"},
      {{{"timestep_spacing", "uniform"}}, "timestep_spacing"},
      {{{"steps_offset", -1}}, "steps_offset"},
      {{{"final_sigmas_type", "sigma_max"}}, "final_sigmas_type"},
      {{{"use_exponential_sigmas", true}}, "use_exponential_sigmas"},
      {{{"use_beta_sigmas", true}}, "use_beta_sigmas"},
      {{{"use_karras_sigmas", true}, {"use_beta_sigmas", true}}, "only one of"},
      {{{"use_karras_sigmas", true}, {"use_flow_sigmas", true}}, "use_flow_sigmas"},
      {{{"flow_shift", 0}}, "flow_shift"},
      {{{"flow_shift", "NaN"}}, "flow_shift"},
      {{{"use_flow_sigmas", "yes"}}, "use_flow_sigmas"},
      {{{"disable_corrector", {1.5}}}, "disable_corrector"},
      {{{"disable_corrector", "all"}}, "disable_corrector"},
      {{{"predict_x0", false}}, "sigma_min"},
      {{{"lower_order_final", false}}, "sigma_min"},
      {{{"solver_p", nlohmann::json::object()}}, "solver_p"},
      {{{"beta_schedule", "cubic"}}, "beta_schedule"},
      {{{"num_train_timesteps", 1}}, "num_train_timesteps"},
  };
  for (const auto& [config, field] : bad) {
    INFO(config.dump());
    a2a::test::require_input_error([&] { a2a::make_scheduler("unipc", config); }, "bad_scheduler_config", field);
  }
  // A shift that overflows the schedule is found when the sigmas are made.
  auto huge = a2a::make_scheduler("unipc", unipc_wan_config(1e308));
  a2a::test::require_input_error([&] { huge->set_timesteps(4); }, "bad_scheduler_config", "flow_shift");

  auto scheduler = a2a::make_scheduler("unipc", nlohmann::json::object());
  const at::Tensor sample = at::ones({1, 2, 2, 2});
  a2a::test::require_input_error([&] { scheduler->step(sample, 999, sample); }, "scheduler_not_ready", "set_timesteps");
  a2a::test::require_input_error([&] { scheduler->set_timesteps(0); }, "bad_steps", "inference steps");
  a2a::test::require_input_error([&] { scheduler->set_timesteps(1001); }, "bad_steps", "inference steps");
  scheduler->set_timesteps(2);
  for (int64_t i = 0; i < 2; ++i) scheduler->step(sample, scheduler->timesteps()[i].item<double>(), sample);
  a2a::test::require_input_error([&] { scheduler->step(sample, 0, sample); }, "scheduler_state", "set_timesteps");
}
