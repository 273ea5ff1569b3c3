// The sampling loop (against the diffusers scheduler trajectories, guidance, img2img, determinism,
// cancellation) and the latent_diffusion stage (tiny preset, UNet and pipeline folders, validation).
#include "base/error.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/unet2d_condition.h"
#include "pipeline/registry.h"
#include "stage_runner.h"
#include "test_support.h"
#include "weights/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using a2a::test::fixture_path;

// The recorded diffusers trajectory replayed through run_guided_sampling: the denoiser returns the
// fixture's model_output_i, and must receive scale_model_input's result and the schedule's timestep.
void replay_trajectory(const std::string& dir) {
  INFO("fixture " << dir);
  const nlohmann::json meta = a2a::test::read_json(dir + "/meta.json");
  for (const auto& [key, value] : meta["step_kwargs"].items()) {
    // Pipelines pass no step kwargs other than DDIM's eta, which defaults to 0 here.
    REQUIRE(key == "eta");
    REQUIRE(value.get<double>() == 0.0);
  }
  auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  auto scheduler = a2a::make_scheduler("", a2a::read_scheduler_config(dir + "/scheduler_config.json"));

  const int64_t recorded_steps = meta["num_steps_in_trajectory"].get<int64_t>();
  int64_t calls = 0;
  a2a::Denoiser denoiser = [&](const at::Tensor& latent_input, const at::Tensor& timestep) {
    const std::string index = std::to_string(calls);
    INFO("step " << calls);
    REQUIRE(calls < recorded_steps);
    CHECK(timestep.dim() == 0);
    CHECK(timestep.scalar_type() == outputs.at("timesteps").scalar_type());
    CHECK(timestep.item<double>() == outputs.at("timesteps")[calls].item<double>());
    const std::string expected_input = outputs.count("scaled_model_input_" + index) ? "scaled_model_input_" + index
                                       : calls == 0                                 ? "sample_0"
                                                    : "prev_sample_" + std::to_string(calls - 1);
    A2A_CHECK_CLOSE(latent_input, outputs.at(expected_input), 1e-5);
    ++calls;
    return inputs.at("model_output_" + index);
  };
  a2a::SamplingOptions options;
  options.num_inference_steps = meta["num_inference_steps"].get<int64_t>();
  options.guidance_scale = 1.0;
  options.initial_noise = inputs.at("initial_noise");
  const uint64_t seed = meta["step_generator_seed"].is_null() ? 0 : meta["step_generator_seed"].get<uint64_t>();
  at::Tensor latents =
      a2a::run_guided_sampling(*scheduler, denoiser, options, at::make_generator<at::CPUGeneratorImpl>(seed));
  CHECK(calls == recorded_steps);
  A2A_CHECK_CLOSE(latents, outputs.at("prev_sample_" + std::to_string(recorded_steps - 1)), 1e-5);
}

void run_loop_on_fixture(const std::string& folder) {
  A2A_REQUIRE_FIXTURE(folder + "/meta.json");
  replay_trajectory(fixture_path(folder));
}

nlohmann::json sd_scheduler_config() {
  return {{"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}, {"steps_offset", 1},
          {"skip_prk_steps", true},           {"clip_sample", false}};
}

// A denoiser with a simple, state-free rule so that runs can be compared.
at::Tensor toy_prediction(const at::Tensor& latent_input, const at::Tensor& timestep) {
  return 0.1 * latent_input + 0.001 * timestep.to(at::kFloat);
}

}  // namespace

TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_ddpm", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_ddpm");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_ddim", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_ddim");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_pndm", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_pndm");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_euler", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_euler");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_euler_ancestral", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_euler_ancestral");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_dpmsolver_multistep", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_dpmsolver_multistep");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_dpmsolver_multistep_karras",
          "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_dpmsolver_multistep_karras");
}
TEST_CASE("sampling loop: replays the diffusers trajectory of scheduler_flow_match_euler", "[latent_diffusion]") {
  run_loop_on_fixture("scheduler_flow_match_euler");
}
// Karras sigmas with leading spacing and steps_offset: the UNet must see diffusers' timesteps to the last bit.
TEST_CASE("sampling loop: replays the diffusers trajectory of the Euler Karras leading variant", "[latent_diffusion]") {
  replay_trajectory(std::string(A2A_SOURCE_DIR) + "/tests/data/variants/scheduler_euler_karras_leading");
}

TEST_CASE("sampling loop: classifier-free guidance batches both passes in one call", "[latent_diffusion]") {
  auto scheduler = a2a::make_scheduler("ddim", sd_scheduler_config());
  const std::vector<int64_t> shape = {2, 4, 3, 3};
  const double guidance = 5.0;
  at::Tensor uncond_value = at::full({2, 4, 3, 3}, 0.25);
  at::Tensor cond_value = at::full({2, 4, 3, 3}, -0.5);
  int64_t calls = 0;
  std::vector<at::Tensor> guided_predictions;
  a2a::Denoiser denoiser = [&](const at::Tensor& latent_input, const at::Tensor&) {
    ++calls;
    REQUIRE(latent_input.size(0) == 2 * shape[0]);
    // Both halves see the same latents; the unconditional half comes first.
    CHECK(at::equal(latent_input.slice(0, 0, shape[0]), latent_input.slice(0, shape[0])));
    return at::cat({uncond_value, cond_value}, 0);
  };
  a2a::SamplingOptions options;
  options.num_inference_steps = 3;
  options.guidance_scale = guidance;
  options.latent_shape = shape;
  a2a::run_guided_sampling(*scheduler, denoiser, options, at::make_generator<at::CPUGeneratorImpl>(1));
  CHECK(calls == 3);

  at::Tensor combined = a2a::classifier_free_guidance(at::cat({uncond_value, cond_value}, 0), guidance, 0.0);
  A2A_CHECK_CLOSE(combined, uncond_value + guidance * (cond_value - uncond_value), 1e-7);
  CHECK_FALSE(a2a::uses_classifier_free_guidance(1.0));
  CHECK(a2a::uses_classifier_free_guidance(1.5));

  // guidance_rescale = 1 gives the guided prediction the conditional one's standard deviation.
  at::Tensor cond = at::linspace(-1, 1, 36).reshape({1, 4, 3, 3});
  at::Tensor uncond = at::linspace(1, 0, 36).reshape({1, 4, 3, 3});
  at::Tensor rescaled = a2a::classifier_free_guidance(at::cat({uncond, cond}, 0), 7.5, 1.0);
  CHECK(rescaled.std().item<double>() == Approx(cond.std().item<double>()).epsilon(1e-5));
}

TEST_CASE("sampling loop: image-to-image starts part-way with the noised init latent", "[latent_diffusion]") {
  // diffusers' get_timesteps: 50 steps at strength 0.8 run the last 40.
  CHECK(a2a::img2img_start_index(50, 0.8, 1) == 10);
  CHECK(a2a::img2img_start_index(10, 1.0, 1) == 0);
  CHECK(a2a::img2img_start_index(10, 0.05, 1) == 10);

  for (const char* name : {"ddim", "euler", "dpmsolver_multistep"}) {
    INFO(name);
    auto scheduler = a2a::make_scheduler(name, sd_scheduler_config());
    at::Tensor init = at::linspace(-1, 1, 2 * 4 * 4 * 4).reshape({2, 4, 4, 4});
    std::vector<double> seen;
    at::Tensor first_input;
    a2a::Denoiser denoiser = [&](const at::Tensor& latent_input, const at::Tensor& timestep) {
      if (seen.empty()) first_input = latent_input.clone();
      seen.push_back(timestep.item<double>());
      return toy_prediction(latent_input, timestep);
    };
    a2a::SamplingOptions options;
    options.num_inference_steps = 10;
    options.guidance_scale = 1.0;
    options.init_latent = init;
    options.strength = 0.6;
    a2a::run_guided_sampling(*scheduler, denoiser, options, at::make_generator<at::CPUGeneratorImpl>(3));

    auto reference = a2a::make_scheduler(name, sd_scheduler_config());
    reference->set_timesteps(10);
    REQUIRE(seen.size() == 6);
    for (size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == reference->timesteps()[4 + i].item<double>());
    // The first model input is the init latent noised to the first timestep run, with noise drawn first
    // from the generator.
    reference->set_begin_index(4);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
    at::Tensor noise = at::randn(init.sizes(), generator, at::TensorOptions().dtype(at::kFloat));
    at::Tensor noised = reference->add_noise(init, noise, seen[0]);
    A2A_CHECK_CLOSE(first_input, reference->scale_model_input(noised, seen[0]), 1e-6);
  }

  auto scheduler = a2a::make_scheduler("ddim", sd_scheduler_config());
  a2a::SamplingOptions too_weak;
  too_weak.num_inference_steps = 10;
  too_weak.init_latent = at::zeros({1, 4, 4, 4});
  too_weak.strength = 0.05;
  CHECK_THROWS_AS(
      a2a::run_guided_sampling(*scheduler, toy_prediction, too_weak, at::make_generator<at::CPUGeneratorImpl>(0)),
      a2a::Error);
}

TEST_CASE("sampling loop: same seed, same latents bit for bit; cancellation stops it", "[latent_diffusion]") {
  for (const std::string& name : a2a::scheduler_names()) {
    INFO(name);
    a2a::SamplingOptions options;
    options.num_inference_steps = 5;
    options.guidance_scale = 3.0;
    options.latent_shape = {1, 4, 4, 4};
    auto run = [&](uint64_t seed) {
      auto scheduler = a2a::make_scheduler(name, sd_scheduler_config());
      return a2a::run_guided_sampling(*scheduler, toy_prediction, options,
                                      at::make_generator<at::CPUGeneratorImpl>(seed));
    };
    at::Tensor a = run(11);
    CHECK(at::equal(a, run(11)));
    CHECK_FALSE(at::equal(a, run(12)));
    CHECK(at::isfinite(a).all().item<bool>());
  }
  auto scheduler = a2a::make_scheduler("euler_ancestral", sd_scheduler_config());
  a2a::SamplingOptions options;
  options.num_inference_steps = 8;
  options.latent_shape = {1, 4, 4, 4};
  int64_t progress_calls = 0;
  options.on_progress = [&](int64_t done, int64_t total) {
    ++progress_calls;
    CHECK(total == 8);
    CHECK(done == progress_calls);
  };
  options.is_cancelled = [&] { return progress_calls == 3; };
  CHECK_THROWS_AS(
      a2a::run_guided_sampling(*scheduler, toy_prediction, options, at::make_generator<at::CPUGeneratorImpl>(0)),
      a2a::Error);
  CHECK(progress_calls == 3);
}

namespace {

std::unique_ptr<a2a::Stage> configured_stage(const nlohmann::json& overrides) {
  return a2a::test::configure_stage("latent_diffusion", overrides, nullptr, "denoise").stage;
}

at::Tensor run_denoise(a2a::Stage& stage, const a2a::PortValues& inputs, uint64_t seed = 5,
                       std::vector<int64_t>* progress = nullptr, const a2a::CancellationToken* cancel = nullptr) {
  auto run = a2a::test::run_stage(stage, inputs, seed, cancel, "denoise");
  if (progress) *progress = run.progress;
  const auto& out = run.outputs;
  REQUIRE(out.count("latent"));
  REQUIRE(out.at("latent").type() == a2a::ValueType::Latent);
  return out.at("latent").tensor();
}

a2a::Value embedding(int64_t batch, int64_t tokens, int64_t width, double offset) {
  return a2a::Value::embedding(at::linspace(-1, 1, batch * tokens * width).reshape({batch, tokens, width}) + offset);
}

}  // namespace

TEST_CASE("latent_diffusion stage: tiny preset, shapes, seeds, progress, validation", "[latent_diffusion]") {
  auto stage = configured_stage({{"steps", 2}, {"width", 16}, {"height", 24}, {"seed", 7}});
  a2a::PortValues inputs = {{"conditioning", embedding(1, 6, 32, 0.0)},
                            {"negative_conditioning", embedding(1, 6, 32, 0.5)}};
  std::vector<int64_t> progress;
  at::Tensor latent = run_denoise(*stage, inputs, 5, &progress);
  // The tiny preset pairs with the vae stages' tiny preset: 2 pixels per latent pixel.
  CHECK(latent.sizes() == at::IntArrayRef({1, 4, 12, 8}));
  CHECK(at::isfinite(latent).all().item<bool>());
  // The default sampler is Stable Diffusion 1.5's PNDM: 2 steps are 3 model calls (PLMS repeats one).
  CHECK(progress == std::vector<int64_t>{1, 2, 3});
  // A fixed seed parameter overrides the run's seed: bit-identical latents.
  CHECK(at::equal(latent, run_denoise(*stage, inputs, 99)));
  // The negative conditioning takes part.
  CHECK_FALSE(at::equal(latent, run_denoise(*stage, {{"conditioning", inputs.at("conditioning")}})));

  auto run_seeded = configured_stage(
      {{"steps", 1}, {"width", 16}, {"height", 16}, {"batch_size", 2}, {"scheduler", "euler_ancestral"}});
  at::Tensor a = run_denoise(*run_seeded, inputs, 1);
  CHECK(a.sizes() == at::IntArrayRef({2, 4, 8, 8}));
  CHECK(at::equal(a, run_denoise(*run_seeded, inputs, 1)));
  CHECK_FALSE(at::equal(a, run_denoise(*run_seeded, inputs, 2)));

  auto img2img = configured_stage({{"steps", 2}, {"width", 16}, {"height", 16}, {"strength", 0.5}});
  std::vector<int64_t> img2img_progress;
  a2a::PortValues with_init = inputs;
  with_init["init_latent"] = a2a::Value::latent(at::zeros({1, 4, 8, 8}));
  at::Tensor from_init = run_denoise(*img2img, with_init, 1, &img2img_progress);
  CHECK(from_init.sizes() == at::IntArrayRef({1, 4, 8, 8}));
  // PNDM's 3 timesteps for 2 steps, from index 1 at strength 0.5.
  CHECK(img2img_progress == std::vector<int64_t>{1, 2});

  a2a::CancellationToken cancel;
  cancel.cancel();
  try {
    run_denoise(*stage, inputs, 1, nullptr, &cancel);
    FAIL("a cancelled run must throw");
  } catch (const a2a::Error& e) {
    CHECK(e.kind() == a2a::ErrorKind::Cancelled);
  }

  CHECK_THROWS_AS(configured_stage({{"width", 30}}), a2a::Error);
  CHECK_THROWS_AS(run_denoise(*stage, {{"conditioning", embedding(1, 6, 24, 0.0)}}), a2a::Error);
  CHECK_THROWS_AS(run_denoise(*stage, {{"conditioning", inputs.at("conditioning")},
                                       {"negative_conditioning", embedding(1, 5, 32, 0.0)}}),
                  a2a::Error);
  CHECK_THROWS_AS(configured_stage({{"model", "/nonexistent/model"}}), a2a::Error);
}

TEST_CASE("latent_diffusion stage: a diffusers pipeline folder configures UNet and scheduler", "[latent_diffusion]") {
  A2A_REQUIRE_FIXTURE("unet2d_condition/config.json");
  A2A_REQUIRE_FIXTURE("scheduler_ddim/scheduler_config.json");
  // A pipeline folder in miniature: the UNet fixture as unet/, the DDIM fixture's configuration as
  // scheduler/.
  fs::path root = fs::path(a2a::test::scratch_dir()) / "latent_diffusion_pipeline";
  fs::remove_all(root);
  fs::create_directories(root / "scheduler");
  fs::create_directory_symlink(fs::absolute(fixture_path("unet2d_condition")), root / "unet");
  fs::copy_file(fixture_path("scheduler_ddim/scheduler_config.json"), root / "scheduler" / "scheduler_config.json");
  std::ofstream(root / "model_index.json") << R"({"_class_name": "StableDiffusionPipeline"})";

  auto unet_config = a2a::test::read_json(fixture_path("unet2d_condition/config.json"));
  a2a::UNet2DConditionOptions unet_options = a2a::UNet2DConditionOptions::from_json(unet_config);
  const int64_t cross_dim = unet_options.cross_attention_dim.front();
  const int64_t size = 8 * 2;  // no vae/ in the folder: 8 pixels per latent pixel
  auto stage = configured_stage({{"model", root.string()},
                                 {"steps", 2},
                                 {"width", size},
                                 {"height", size},
                                 {"seed", 3},
                                 {"guidance_scale", 4.0}});
  CHECK(stage->module() != nullptr);
  a2a::PortValues inputs = {{"conditioning", embedding(1, 5, cross_dim, 0.0)},
                            {"negative_conditioning", embedding(1, 5, cross_dim, -0.3)}};
  at::Tensor latent = run_denoise(*stage, inputs);
  CHECK(latent.sizes() == at::IntArrayRef({1, unet_options.in_channels, 2, 2}));

  // The same run by hand: the folder's DDIM scheduler, the UNet, guidance over [negative; positive].
  auto* unet = dynamic_cast<a2a::UNet2DConditionModelImpl*>(stage->module());
  REQUIRE(unet != nullptr);
  auto scheduler =
      a2a::make_scheduler("", a2a::read_scheduler_config(fixture_path("scheduler_ddim/scheduler_config.json")));
  at::Tensor states = at::cat({inputs.at("negative_conditioning").tensor(), inputs.at("conditioning").tensor()}, 0);
  a2a::SamplingOptions options;
  options.num_inference_steps = 2;
  options.guidance_scale = 4.0;
  options.latent_shape = {1, unet_options.in_channels, 2, 2};
  at::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected = a2a::run_guided_sampling(
        *scheduler, [&](const at::Tensor& x, const at::Tensor& t) { return unet->forward(x, t, states); }, options,
        at::make_generator<at::CPUGeneratorImpl>(3));
  }
  CHECK(at::equal(latent, expected));

  // Another sampler on the same model.
  auto euler = configured_stage({{"model", root.string()},
                                 {"steps", 2},
                                 {"width", size},
                                 {"height", size},
                                 {"seed", 3},
                                 {"guidance_scale", 4.0},
                                 {"scheduler", "euler"}});
  CHECK_FALSE(at::equal(run_denoise(*euler, inputs), latent));
}
