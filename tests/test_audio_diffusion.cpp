// audio_diffusion: AudioLDM's duration -> latent geometry, the stage against the sampling loop it wraps,
// an AudioLDM pipeline folder configuring it, and the Griffin-Lim ending of the audio decoder.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "diffusion/audioldm.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/unet2d_condition.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stage_runner.h"
#include "test_support.h"
#include "weights/hf_layout.h"

using namespace a2a;

namespace {

namespace fs = std::filesystem;

std::unique_ptr<Stage> make_audio_stage(const std::string& type, Json given, ModuleCache* cache) {
  return a2a::test::configure_stage(type, given, cache).stage;
}

at::Tensor random_vector(int64_t width, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  at::Tensor v = at::randn({1, 1, width}, generator);
  return v / v.norm();
}

// What the stage must compute: diffusers' AudioLDM loop over `unet` with class labels cat([negative, cond]).
at::Tensor reference_latents(UNet2DConditionModelImpl& unet, const nlohmann::json& scheduler_config,
                             const at::Tensor& cond, const at::Tensor& negative, std::vector<int64_t> shape,
                             int64_t steps, double guidance_scale, uint64_t seed) {
  auto scheduler = make_scheduler("", scheduler_config);
  SamplingOptions options;
  options.num_inference_steps = steps;
  options.guidance_scale = guidance_scale;
  options.latent_shape = std::move(shape);
  at::Tensor labels = at::cat({negative.view({1, -1}), cond.view({1, -1})}, 0);
  Denoiser denoiser = [&](const at::Tensor& x, const at::Tensor& t) {
    return unet.forward(x, t, at::Tensor(), labels);
  };
  return run_guided_sampling(*scheduler, denoiser, options, at::detail::createCPUGenerator(seed));
}

}  // namespace

TEST_CASE("AudioLDM geometry: seconds to mel frames, latent rows and samples", "[audio_diffusion]") {
  AudioLDMGeometry g;  // AudioLDM's: 64 bins, 160 samples per frame at 16 kHz, VAE factor 4
  CHECK(g.seconds_per_frame() == 0.01);
  CHECK(g.mel_frames(5.12) == 512);
  CHECK(g.mel_frames(10.0) == 1000);
  // int(0.333 / 0.01) = 33 frames, rounded up to a multiple of 4.
  CHECK(g.mel_frames(0.333) == 36);
  CHECK(g.waveform_samples(5.12) == 81920);
  CHECK(g.latent_shape(2, 8, 5.12) == std::vector<int64_t>({2, 8, 128, 16}));
  CHECK_THROWS_AS(g.mel_frames(0.0), a2a::Error);
  CHECK_THROWS_AS(g.mel_frames(0.001), a2a::Error);  // 0 frames

  const std::string root = "hf_layouts/audioldm-s-full-v2";
  A2A_REQUIRE_FIXTURE(root + "/vocoder/config.json");
  AudioLDMGeometry real = read_audioldm_geometry(test::fixture_path(root));
  auto vocoder = read_config_json(test::fixture_path(root + "/vocoder/config.json"));
  auto vae = read_config_json(test::fixture_path(root + "/vae/config.json"));
  auto unet = read_config_json(test::fixture_path(root + "/unet/config.json"));
  CHECK(real.mel_bins == vocoder["model_in_dim"].get<int64_t>());
  CHECK(real.sampling_rate == vocoder["sampling_rate"].get<int64_t>());
  int64_t hop = 1;
  for (const auto& rate : vocoder["upsample_rates"]) hop *= rate.get<int64_t>();
  CHECK(real.hop_length == hop);
  CHECK(real.vae_scale_factor == (int64_t{1} << (vae["block_out_channels"].size() - 1)));
  // The pipeline's default length: sample_size · vae_scale_factor frames.
  CHECK(real.default_duration(unet["sample_size"].get<int64_t>()) ==
        Approx(static_cast<double>(unet["sample_size"].get<int64_t>() * real.vae_scale_factor * hop) /
               static_cast<double>(real.sampling_rate)));
  CHECK(real.mel_frames(5.12) == 512);
}

TEST_CASE("audio_diffusion's tiny preset runs AudioLDM's guided loop on the class embedding", "[audio_diffusion]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  const double duration = 0.16;
  auto stage = make_audio_stage("audio_diffusion", {{"steps", 2}, {"duration", duration}, {"seed", 5}}, &cache);
  auto& unet = dynamic_cast<UNet2DConditionModelImpl&>(*stage->module());
  const int64_t width = *unet.options().projection_class_embeddings_input_dim;
  at::Tensor cond = random_vector(width, 1), negative = random_vector(width, 2);
  RunContext run;
  auto out = stage->run(
      {{"conditioning", Value::embedding(cond)}, {"negative_conditioning", Value::embedding(negative)}}, run);
  const at::Tensor latent = out.at("latent").tensor();
  // 16 mel frames of 64 bins; the tiny VAE halves both.
  REQUIRE(latent.sizes() == at::IntArrayRef({1, unet.options().in_channels, 8, 32}));

  // The audio_diffusion stage's default scheduler is AudioLDM's DDIM configuration.
  nlohmann::json ddim = {
      {"_class_name", "DDIMScheduler"}, {"beta_end", 0.0195},        {"beta_schedule", "scaled_linear"},
      {"beta_start", 0.0015},           {"clip_sample", false},      {"num_train_timesteps", 1000},
      {"prediction_type", "epsilon"},   {"set_alpha_to_one", false}, {"steps_offset", 1}};
  at::Tensor expected = reference_latents(unet, ddim, cond, negative, latent.sizes().vec(), 2, 2.5, 5);
  A2A_CHECK_CLOSE(latent, expected, 1e-5);

  // The conditioning matters.
  at::Tensor other =
      stage
          ->run({{"conditioning", Value::embedding(negative)}, {"negative_conditioning", Value::embedding(negative)}},
                run)
          .at("latent")
          .tensor();
  CHECK_FALSE(torch::allclose(other, latent));

  // A [B, D] vector (an LLM's output projection) works like [B, 1, D]; batch_size repeats each row.
  auto batched = make_audio_stage("audio_diffusion",
                                  {{"steps", 2}, {"duration", duration}, {"seed", 5}, {"batch_size", 2}}, &cache);
  CHECK(batched->module() == stage->module());
  at::Tensor two = batched->run({{"conditioning", Value::tensor(cond.view({1, width}))}}, run).at("latent").tensor();
  CHECK(two.size(0) == 2);

  CHECK_THROWS_AS(stage->run({{"conditioning", Value::embedding(at::zeros({1, 1, width + 1}))}}, run), a2a::Error);
  CHECK_THROWS_AS(make_audio_stage("audio_diffusion", {{"duration", 0.001}}, &cache), a2a::Error);
}

TEST_CASE("audio_diffusion reads an AudioLDM pipeline folder: unet, vae factor, vocoder bins, scheduler",
          "[audio_diffusion]") {
  A2A_REQUIRE_FIXTURE("audioldm_unet2d_condition/diffusion_pytorch_model.safetensors");
  A2A_REQUIRE_FIXTURE("hf_layouts/audioldm-s-full-v2/model_index.json");
  torch::NoGradGuard no_grad;
  const fs::path layout = test::fixture_path("hf_layouts/audioldm-s-full-v2");
  const fs::path folder = fs::path(test::scratch_dir()) / "audioldm_pipeline";
  fs::remove_all(folder);
  for (const char* part : {"unet", "vae", "vocoder", "scheduler"}) fs::create_directories(folder / part);
  fs::copy_file(layout / "model_index.json", folder / "model_index.json");
  fs::copy_file(layout / "vae" / "config.json", folder / "vae" / "config.json");
  fs::copy_file(layout / "vocoder" / "config.json", folder / "vocoder" / "config.json");
  fs::copy_file(layout / "scheduler" / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json");
  // The real configuration of every other part around the tiny UNet fixture.
  fs::copy_file(test::fixture_path("audioldm_unet2d_condition/config.json"), folder / "unet" / "config.json");
  fs::create_symlink(test::fixture_path("audioldm_unet2d_condition/diffusion_pytorch_model.safetensors"),
                     folder / "unet" / "diffusion_pytorch_model.safetensors");

  ModuleCache cache;
  const double duration = 0.32;
  auto stage = make_audio_stage(
      "audio_diffusion", {{"model", folder.string()}, {"steps", 2}, {"duration", duration}, {"seed", 3}}, &cache);
  auto& unet = dynamic_cast<UNet2DConditionModelImpl&>(*stage->module());
  const int64_t width = *unet.options().projection_class_embeddings_input_dim;
  at::Tensor cond = random_vector(width, 4), negative = random_vector(width, 5);
  RunContext run;
  at::Tensor latent =
      stage->run({{"conditioning", Value::embedding(cond)}, {"negative_conditioning", Value::embedding(negative)}}, run)
          .at("latent")
          .tensor();
  AudioLDMGeometry geometry = read_audioldm_geometry(folder.string());
  CHECK(geometry.vae_scale_factor == 4);
  REQUIRE(latent.sizes().vec() == geometry.latent_shape(1, unet.options().in_channels, duration));
  auto scheduler_config = read_scheduler_config((folder / "scheduler" / "scheduler_config.json").string());
  A2A_CHECK_CLOSE(latent, reference_latents(unet, scheduler_config, cond, negative, latent.sizes().vec(), 2, 2.5, 3),
                  1e-5);

  // The UNet folder alone inside the pipeline folder finds the same geometry.
  auto from_unet = make_audio_stage(
      "audio_diffusion", {{"model", (folder / "unet").string()}, {"steps", 2}, {"duration", duration}, {"seed", 3}},
      &cache);
  CHECK(from_unet->module() == stage->module());
  A2A_CHECK_CLOSE(
      from_unet
          ->run({{"conditioning", Value::embedding(cond)}, {"negative_conditioning", Value::embedding(negative)}}, run)
          .at("latent")
          .tensor(),
      latent, 0.0);

  CHECK_THROWS_AS(make_audio_stage("audio_diffusion", {{"model", (folder / "vae").string()}}, &cache), a2a::Error);
}

TEST_CASE("AudioLDM's mel image can finish with Griffin-Lim instead of HiFi-GAN", "[audio_diffusion]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  auto generator = at::detail::createCPUGenerator(9);
  const int64_t frames = 12, bins = 64;
  at::Tensor log_mel = at::randn({1, 1, frames, bins}, generator) - 4.0;
  RunContext run;
  auto to_magnitude = make_audio_stage("audioldm_mel_to_spectrogram", Json::object(), &cache);
  at::Tensor magnitude = to_magnitude->run({{"spectrogram", Value::tensor(log_mel)}}, run).at("spectrogram").tensor();
  REQUIRE(magnitude.sizes() == at::IntArrayRef({1, bins, frames}));
  A2A_CHECK_CLOSE(magnitude, log_mel.squeeze(1).exp().transpose(1, 2), 1e-6);

  auto griffin_lim = make_audio_stage("griffin_lim",
                                      {{"n_fft", 1024},
                                       {"hop_length", 160},
                                       {"sample_rate", 16000},
                                       {"f_max", 8000.0},
                                       {"mel_scale", "slaney"},
                                       {"norm", "slaney"},
                                       {"power", 1.0},
                                       {"n_iter", 2}},
                                      &cache);
  auto audio = griffin_lim->run({{"spectrogram", Value::tensor(magnitude)}}, run).at("audio");
  CHECK(audio.sample_rate() == 16000);
  CHECK(audio.tensor().size(2) == (frames - 1) * 160);
  CHECK_THROWS_AS(to_magnitude->run({{"spectrogram", Value::tensor(at::zeros({5}))}}, run), a2a::Error);
}
