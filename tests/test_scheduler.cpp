// Parity of the schedulers with diffusers 0.29.2 trajectories (fixtures scheduler_*), plus the
// timestep spacing rules of "Common Diffusion Noise Schedules and Sample Steps are Flawed" (Table 2).
#include "base/error.h"
#include "diffusion/schedulers/ddim_scheduler.h"
#include "diffusion/schedulers/scheduler.h"
#include "test_support.h"
#include "weights/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>

#include <iomanip>

namespace {

using a2a::test::fixture_path;

// The fixtures README's bound for trajectories: max|ours - ref| <= 1e-5 * max(1, max|ref|) per tensor.
constexpr double kTrajectoryTolerance = 1e-5;

void check_relative(const at::Tensor& ours, const at::Tensor& ref, double rtol) {
  REQUIRE(ours.sizes() == ref.sizes());
  auto o = ours.to(at::kDouble);
  auto r = ref.to(at::kDouble);
  double err = ((o - r).abs() / r.abs().clamp_min(1e-30)).max().item<double>();
  INFO("max relative error " << err << " (bound " << rtol << ")");
  CHECK(err <= rtol);
}

// Replays the recorded trajectory of the scheduler fixture folder `dir` (README: "Scheduler fixtures").
void check_scheduler_fixture(const std::string& dir) {
  INFO("fixture " << dir);
  const nlohmann::json meta = a2a::test::read_json(dir + "/meta.json");
  const nlohmann::json config = a2a::read_scheduler_config(dir + "/scheduler_config.json");
  auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");

  auto scheduler = a2a::make_scheduler("", config);
  REQUIRE(scheduler->class_name() == config["_class_name"].get<std::string>());
  const std::string reference_class = meta["class"].get<std::string>();
  CHECK(reference_class == "diffusers." + scheduler->class_name());

  for (const auto& [key, value] : meta["step_kwargs"].items()) {
    if (key == "eta") {
      auto* ddim = dynamic_cast<a2a::DDIMScheduler*>(scheduler.get());
      REQUIRE(ddim != nullptr);
      ddim->set_eta(value.get<double>());
    } else {
      FAIL("step kwarg " << key << " is not handled by this test");
    }
  }

  scheduler->set_timesteps(meta["num_inference_steps"].get<int64_t>());

  const at::Tensor& timesteps = scheduler->timesteps();
  const at::Tensor& ref_timesteps = outputs.at("timesteps");
  REQUIRE(timesteps.sizes() == ref_timesteps.sizes());
  REQUIRE(timesteps.scalar_type() == ref_timesteps.scalar_type());
  REQUIRE(timesteps.size(0) == meta["num_steps_in_trajectory"].get<int64_t>());
  // The timesteps are what the denoiser is called with: equal values, int64 or float32 alike.
  for (int64_t i = 0; i < timesteps.size(0); ++i) {
    INFO("timestep " << i << ": ours " << std::setprecision(9) << timesteps[i].item<double>() << ", diffusers "
                     << ref_timesteps[i].item<double>());
    CHECK(timesteps[i].item<double>() == ref_timesteps[i].item<double>());
  }
  if (outputs.count("sigmas")) {
    REQUIRE(scheduler->sigmas().defined());
    check_relative(scheduler->sigmas().slice(0, 0, -1), outputs.at("sigmas").slice(0, 0, -1), 1e-5);
    CHECK(std::abs(scheduler->sigmas()[-1].item<double>() - outputs.at("sigmas")[-1].item<double>()) <= 1e-6);
  }
  if (outputs.count("alphas_cumprod")) {
    A2A_CHECK_CLOSE(scheduler->alphas_cumprod(), outputs.at("alphas_cumprod"), kTrajectoryTolerance);
  }
  const double ref_init_noise_sigma = meta["init_noise_sigma"].get<double>();
  CHECK(std::abs(scheduler->init_noise_sigma() - ref_init_noise_sigma) <= 1e-6 * std::max(1.0, ref_init_noise_sigma));

  at::Tensor sample = inputs.at("initial_noise") * scheduler->init_noise_sigma();
  A2A_CHECK_CLOSE(sample, outputs.at("sample_0"), kTrajectoryTolerance);

  std::optional<at::Generator> generator;
  std::optional<at::Generator> noise_replay;
  if (!meta["step_generator_seed"].is_null()) {
    const uint64_t seed = meta["step_generator_seed"].get<uint64_t>();
    generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    noise_replay = at::make_generator<at::CPUGeneratorImpl>(seed);
  }

  for (int64_t i = 0; i < timesteps.size(0); ++i) {
    const std::string index = std::to_string(i);
    INFO("step " << i);
    const double t = timesteps[i].item<double>();
    at::Tensor scaled = scheduler->scale_model_input(sample, t);
    if (outputs.count("scaled_model_input_" + index))
      A2A_CHECK_CLOSE(scaled, outputs.at("scaled_model_input_" + index), kTrajectoryTolerance);
    const at::Tensor& model_output = inputs.at("model_output_" + index);
    if (outputs.count("noise_" + index)) {
      // The noise step() draws: torch.randn(shape, generator=gen) reproduced by at::randn.
      REQUIRE(noise_replay);
      at::Tensor replayed = at::randn(model_output.sizes(), *noise_replay, at::TensorOptions().dtype(at::kFloat));
      A2A_CHECK_CLOSE(replayed, outputs.at("noise_" + index), 1e-7);
    }
    a2a::SchedulerStepOutput result = scheduler->step(model_output, t, sample, generator);
    sample = result.prev_sample;
    A2A_CHECK_CLOSE(sample, outputs.at("prev_sample_" + index), kTrajectoryTolerance);
    if (outputs.count("pred_original_sample_" + index)) {
      REQUIRE(result.pred_original_sample.defined());
      A2A_CHECK_CLOSE(result.pred_original_sample, outputs.at("pred_original_sample_" + index), kTrajectoryTolerance);
    }
  }
  // Every recorded step was compared: nothing is left over.
  CHECK_FALSE(outputs.count("prev_sample_" + std::to_string(timesteps.size(0))));
}

std::vector<int64_t> to_vector(const at::Tensor& tensor) {
  at::Tensor values = tensor.to(at::kLong).contiguous();
  return std::vector<int64_t>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel());
}

}  // namespace

// One case per fixture folder, so that a skipped (absent) folder cannot hide another one's result.
#define A2A_SCHEDULER_FIXTURE_CASE(folder)                                                     \
  TEST_CASE("scheduler fixture " folder ": the trajectory matches diffusers", "[scheduler]") { \
    A2A_REQUIRE_FIXTURE(folder "/meta.json");                                                  \
    check_scheduler_fixture(fixture_path(folder));                                             \
  }

A2A_SCHEDULER_FIXTURE_CASE("scheduler_ddpm")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_ddim")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_pndm")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_euler")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_euler_ancestral")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_dpmsolver_multistep")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_dpmsolver_multistep_karras")
A2A_SCHEDULER_FIXTURE_CASE("scheduler_flow_match_euler")

#undef A2A_SCHEDULER_FIXTURE_CASE

TEST_CASE("scheduler variant scheduler_euler_karras_leading: the trajectory matches diffusers", "[scheduler]") {
  check_scheduler_fixture(std::string(A2A_SOURCE_DIR) + "/tests/data/variants/scheduler_euler_karras_leading");
}

TEST_CASE("scheduler: timestep spacing follows Table 2 of Lin et al. (2023)", "[scheduler]") {
  // 1000 training steps, 10 sampling steps.
  nlohmann::json config = {
      {"num_train_timesteps", 1000}, {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}};
  SECTION("leading with steps_offset 1") {
    config["timestep_spacing"] = "leading";
    config["steps_offset"] = 1;
    auto ddim = a2a::make_scheduler("DDIMScheduler", config);
    ddim->set_timesteps(10);
    CHECK(to_vector(ddim->timesteps()) == std::vector<int64_t>{901, 801, 701, 601, 501, 401, 301, 201, 101, 1});
  }
  SECTION("trailing") {
    config["timestep_spacing"] = "trailing";
    auto ddim = a2a::make_scheduler("ddim", config);
    ddim->set_timesteps(10);
    CHECK(to_vector(ddim->timesteps()) == std::vector<int64_t>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99});
    auto euler = a2a::make_scheduler("euler", config);
    euler->set_timesteps(10);
    CHECK(euler->timesteps().scalar_type() == at::kFloat);
    CHECK(to_vector(euler->timesteps()) == std::vector<int64_t>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99});
  }
  SECTION("linspace") {
    config["timestep_spacing"] = "linspace";
    auto ddpm = a2a::make_scheduler("ddpm", config);
    ddpm->set_timesteps(10);
    CHECK(to_vector(ddpm->timesteps()) == std::vector<int64_t>{999, 888, 777, 666, 555, 444, 333, 222, 111, 0});
  }
  SECTION("PNDM repeats the second PLMS timestep") {
    config["skip_prk_steps"] = true;
    config["steps_offset"] = 1;
    auto pndm = a2a::make_scheduler("pndm", config);
    pndm->set_timesteps(4);
    CHECK(to_vector(pndm->timesteps()) == std::vector<int64_t>{751, 501, 501, 251, 1});
  }
}

TEST_CASE("scheduler: configuration handling", "[scheduler]") {
  SECTION("a pipeline's config may be given to another sampler: the shared fields carry over") {
    nlohmann::json sd15 = {{"_class_name", "PNDMScheduler"}, {"beta_schedule", "scaled_linear"},
                           {"beta_start", 0.00085},          {"beta_end", 0.012},
                           {"skip_prk_steps", true},         {"steps_offset", 1},
                           {"timestep_spacing", "leading"}};
    auto euler = a2a::make_scheduler("euler_ancestral", sd15);
    CHECK(euler->class_name() == "EulerAncestralDiscreteScheduler");
    euler->set_timesteps(10);
    CHECK(to_vector(euler->timesteps()) == std::vector<int64_t>{901, 801, 701, 601, 501, 401, 301, 201, 101, 1});
    // Leading spacing: the initial sigma is sqrt(sigma_max^2 + 1).
    const double sigma_max = euler->sigmas().max().item<double>();
    CHECK(euler->init_noise_sigma() == Approx(std::sqrt(sigma_max * sigma_max + 1)).epsilon(1e-6));
  }
  SECTION("absent keys take diffusers' class defaults") {
    auto ddim = a2a::make_scheduler("DDIMScheduler", nlohmann::json::object());
    // beta_schedule linear 1e-4..0.02, set_alpha_to_one: alphas_cumprod[0] = 1 - 1e-4.
    CHECK(ddim->alphas_cumprod()[0].item<double>() == Approx(1 - 1e-4).epsilon(1e-7));
    ddim->set_timesteps(4);
    CHECK(to_vector(ddim->timesteps()) == std::vector<int64_t>{750, 500, 250, 0});
  }
  SECTION("errors name the problem") {
    CHECK_THROWS_AS(a2a::make_scheduler("heun", nlohmann::json::object()), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("", nlohmann::json::object()), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("ddim", {{"thresholding", true}}), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("ddim", {{"prediction_type", "flow"}}), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("euler", {{"timestep_spacing", "uniform"}})->set_timesteps(10), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("ddim", {{"beta_end", "high"}}), a2a::Error);
    auto ddim = a2a::make_scheduler("ddim", nlohmann::json::object());
    CHECK_THROWS_AS(ddim->set_timesteps(1001), a2a::Error);
  }
  SECTION("a training schedule whose sigmas are not finite (found by the config_json fuzzer)") {
    // 9294 linear steps drive alphas_cumprod below float32's range: every sigma scheduler once gave NaN
    // timesteps (an undefined cast) for it; 10 000 steps of 1e-4..2e-3 stay finite and are accepted.
    for (const char* name :
         {"euler", "euler_karras", "euler_ancestral", "dpmsolver_multistep", "dpmsolver_multistep_karras"}) {
      INFO(name);
      try {
        a2a::make_scheduler(name, {{"num_train_timesteps", 9294}})->set_timesteps(4);
        FAIL("a degenerate schedule was accepted");
      } catch (const a2a::Error& e) {
        CHECK(e.code() == "bad_scheduler_config");
        CHECK(e.message().find("not finite") != std::string::npos);
      }
      auto fine = a2a::make_scheduler(name, {{"num_train_timesteps", 10000}, {"beta_end", 0.002}});
      fine->set_timesteps(4);
      CHECK(at::isfinite(fine->timesteps().to(at::kFloat)).all().item<bool>());
    }
    CHECK_THROWS_AS(a2a::make_scheduler("euler", {{"beta_start", 0.5}, {"beta_end", 1.5}}), a2a::Error);
    // Integers past int64 (1e125 once reached an undefined float-to-integer conversion).
    CHECK_THROWS_AS(a2a::make_scheduler("ddpm", {{"steps_offset", 1e125}}), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("ddpm", {{"steps_offset", uint64_t{1} << 63}}), a2a::Error);
    CHECK_THROWS_AS(a2a::make_scheduler("ddpm", {{"steps_offset", 9223372036854775808.0}}), a2a::Error);
    // A training schedule of 2.5e10 steps once asked for a 100 GB table.
    for (const auto& name : a2a::scheduler_names()) {
      INFO(name);
      CHECK_THROWS_WITH(a2a::make_scheduler(name, {{"num_train_timesteps", int64_t{25411111115}}}),
                        Catch::Contains("num_train_timesteps must lie in [2, 1048576]"));
    }
    CHECK_NOTHROW(a2a::make_scheduler("ddpm", {{"num_train_timesteps", int64_t{1} << 20}}));
  }
}

TEST_CASE("scheduler: prediction types agree on a known clean sample", "[scheduler]") {
  // For x_t = sqrt(a) x0 + sqrt(1 - a) eps, each prediction type's ideal output must give the same
  // pred_original_sample x0.
  nlohmann::json config = {
      {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}, {"clip_sample", false}};
  at::Tensor x0 = at::linspace(-1, 1, 32).reshape({1, 2, 4, 4});
  at::Tensor eps = at::linspace(1, -0.5, 32).reshape({1, 2, 4, 4});
  for (const char* name : {"ddim", "ddpm"}) {
    INFO(name);
    auto probe = a2a::make_scheduler(name, config);
    probe->set_timesteps(10);
    const double t = probe->timesteps()[3].item<double>();
    const double a = probe->alphas_cumprod()[static_cast<int64_t>(t)].item<double>();
    at::Tensor x_t = probe->add_noise(x0, eps, t);
    CHECK(a2a::test::scaled_error(x_t, std::sqrt(a) * x0 + std::sqrt(1 - a) * eps) < 1e-6);
    for (const char* prediction : {"epsilon", "v_prediction", "sample"}) {
      INFO(prediction);
      config["prediction_type"] = prediction;
      auto scheduler = a2a::make_scheduler(name, config);
      scheduler->set_timesteps(10);
      at::Tensor ideal = std::string(prediction) == "epsilon"  ? eps
                         : std::string(prediction) == "sample" ? x0
                                                               : std::sqrt(a) * eps - std::sqrt(1 - a) * x0;
      auto generator = at::make_generator<at::CPUGeneratorImpl>(7);
      auto result = scheduler->step(ideal, t, x_t, generator);
      CHECK(a2a::test::scaled_error(result.pred_original_sample, x0) < 1e-5);
    }
  }
}
