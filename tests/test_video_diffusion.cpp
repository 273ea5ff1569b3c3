// The video_diffusion stage and its two pipelines (Wan 2.1, ModelScope's 3-D UNet): guidance in one batched
// call against the reference's two calls, the frame folding of TextToVideoSDPipeline, the tiny presets, the
// size rules and errors, pipeline folders assembled from the shared fixtures, and configs/text_to_video.yaml.
#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "diffusion/video_pipeline.h"
#include "media/video_audio.h"
#include "media/video_io.h"
#include "stage_runner.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace a2a;

namespace {

Json video_params(Json extra) {
  Json params = {{"steps", 2}, {"frames", 5}, {"width", 32}, {"height", 32}, {"tiny_conditioning_dim", 16}};
  for (auto& [key, value] : extra.items()) params[key] = value;
  return params;
}

at::Tensor video_conditioning(int64_t rows, int64_t tokens, int64_t width, uint64_t seed = 7) {
  torch::manual_seed(seed);
  return torch::randn({rows, tokens, width});
}

PortValues video_inputs(int64_t width, int64_t tokens = 6) {
  return {{"conditioning", Value::embedding(video_conditioning(1, tokens, width))},
          {"negative_conditioning", Value::embedding(video_conditioning(1, tokens, width, 8))}};
}

test::StageRun run_video_stage(const Json& params, const PortValues& inputs) {
  auto configured = test::configure_stage("video_diffusion", params);
  return test::run_stage(*configured.stage, inputs);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// A pipeline folder made of the shared fixtures' model folders, as diffusers lays one out.
fs::path video_pipeline_folder(const std::string& name, const std::string& pipeline_class,
                               const std::vector<std::pair<std::string, std::string>>& components) {
  const fs::path root = test::fresh_dir(name);
  for (const auto& [component, fixture] : components) {
    fs::create_directories(root / component);
    for (const auto& entry : fs::directory_iterator(test::fixture_path(fixture))) {
      const std::string file = entry.path().filename().string();
      if (file == "config.json" || file == "scheduler_config.json" || file == "diffusion_pytorch_model.safetensors")
        fs::copy_file(entry.path(), root / component / file);
    }
  }
  test::write_text((root / "model_index.json").string(), "{\"_class_name\": \"" + pipeline_class + "\"}");
  return root;
}

}  // namespace

TEST_CASE("video pipelines: one batched guidance call equals the reference's two calls", "[video_diffusion]") {
  torch::NoGradGuard no_grad;
  for (const std::string architecture : video_architectures()) {
    INFO(architecture);
    auto pipeline = tiny_video_pipeline(architecture, 16, 3, "cpu", at::kFloat);
    const VideoSize size{5, 32, 32};
    torch::manual_seed(11);
    const at::Tensor latents = torch::randn(pipeline->latent_shape(2, size));
    const at::Tensor conditioning = video_conditioning(2, 6, pipeline->conditioning_width());
    const at::Tensor timestep = torch::tensor(700.0);
    const at::Tensor batched = pipeline->predict(latents, timestep, conditioning);
    const auto rows = conditioning.chunk(2, 0);
    const at::Tensor two_calls = predict_in_two_calls(*pipeline, latents, timestep, rows[0], rows[1]);
    const double diff = max_abs_diff(batched, two_calls);
    UNSCOPED_INFO(architecture << ": batched vs two calls, max abs diff " << diff);
    CHECK(batched.sizes() == latents.sizes());
    CHECK(diff <= 1e-5);
    // The halves are conditioned on their own rows: swapping the conditioning changes the prediction.
    CHECK(max_abs_diff(batched, pipeline->predict(latents, timestep, conditioning.flip(0))) > 1e-3);
  }
  // And over a whole run of the stage.
  for (const std::string architecture : video_architectures()) {
    INFO(architecture);
    const auto one = run_video_stage(video_params({{"architecture", architecture}}), video_inputs(16));
    const auto two =
        run_video_stage(video_params({{"architecture", architecture}, {"batched_guidance", false}}), video_inputs(16));
    const double diff = max_abs_diff(one.outputs.at("latent").tensor(), two.outputs.at("latent").tensor());
    UNSCOPED_INFO(architecture << ": final latent, batched vs two calls, max abs diff " << diff);
    CHECK(diff <= 1e-4);
  }
}

TEST_CASE("fold_frames puts the frames into the batch as TextToVideoSDPipeline does", "[video_diffusion]") {
  const at::Tensor latents = torch::arange(2 * 3 * 4 * 5 * 6).reshape({2, 3, 4, 5, 6});
  const at::Tensor folded = fold_frames(latents);
  REQUIRE(folded.sizes() == at::IntArrayRef({8, 3, 5, 6}));
  // latents.permute(0, 2, 1, 3, 4).reshape(bsz * frames, channel, width, height): row b·F + f is frame f of b.
  CHECK(folded[1 * 4 + 2].equal(latents[1].select(1, 2)));
  CHECK(unfold_frames(folded, 2).equal(latents));
}

TEST_CASE("video_diffusion's tiny presets make [B, F, 3, H, W] videos at the requested fps", "[video_diffusion]") {
  struct Case {
    std::string architecture;
    int64_t frames, width, height;
    std::vector<int64_t> latent;  // the latent shape the pipeline draws
  };
  // Wan: 8x spatial, 4x temporal; ModelScope: the tiny SD VAE's 2x, every frame.
  const std::vector<Case> cases = {{"wan", 9, 48, 32, {1, 4, 3, 4, 6}}, {"unet3d", 3, 40, 24, {1, 4, 3, 12, 20}}};
  for (const auto& c : cases) {
    INFO(c.architecture);
    const Json params = video_params({{"architecture", c.architecture},
                                      {"frames", c.frames},
                                      {"width", c.width},
                                      {"height", c.height},
                                      {"fps", 12.5}});
    const auto run = run_video_stage(params, video_inputs(16));
    const Value& video = run.outputs.at("video");
    CHECK(video.tensor().sizes() == at::IntArrayRef({1, c.frames, 3, c.height, c.width}));
    CHECK(video.fps() == 12.5);
    CHECK(video.tensor().min().item<double>() >= 0.0);
    CHECK(video.tensor().max().item<double>() <= 1.0);
    CHECK(run.outputs.at("latent").tensor().sizes() == at::IntArrayRef(c.latent));
    CHECK(run.progress.size() >= 2);  // the denoising steps, then decoding
    // The same seed gives the same bytes; another seed other frames.
    CHECK(run_video_stage(params, video_inputs(16)).outputs.at("video").tensor().equal(video.tensor()));
    Json reseeded = params;
    reseeded["seed"] = 99;
    CHECK(!run_video_stage(reseeded, video_inputs(16)).outputs.at("video").tensor().equal(video.tensor()));
  }
  // fps 0 takes the architecture's own rate.
  CHECK(run_video_stage(video_params({}), video_inputs(16)).outputs.at("video").fps() == 16.0);
  CHECK(run_video_stage(video_params({{"architecture", "unet3d"}}), video_inputs(16)).outputs.at("video").fps() == 8.0);
}

TEST_CASE("video_diffusion refuses sizes, shapes, folders and the reserved port with codes", "[video_diffusion]") {
  auto configure_code = [](const Json& params) {
    return test::error_code([&] { test::configure_stage("video_diffusion", params); });
  };
  CHECK(configure_code(video_params({{"frames", 6}})) == "bad_frames");  // Wan: 1 + 4k
  CHECK(configure_code(video_params({{"width", 40}})) == "bad_size");    // Wan: multiples of 16
  CHECK(configure_code(video_params({{"architecture", "unet3d"}, {"frames", 6}, {"width", 40}})).empty());
  try {
    test::configure_stage("video_diffusion", video_params({{"frames", 7}}));
    FAIL("frames 7 was accepted");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("5 or 9") != std::string::npos);
  }
  const fs::path empty = test::fresh_dir("video_no_index");
  CHECK(configure_code(video_params({{"model", empty.string()}})) == "missing_config");
  test::write_text((empty / "model_index.json").string(), "{\"_class_name\": \"WanImageToVideoPipeline\"}");
  CHECK(configure_code(video_params({{"model", empty.string()}})) == "unsupported_model_config");
  test::write_text((empty / "model_index.json").string(), "{\"_class_name\": \"TextToVideoSDPipeline\"}");
  CHECK(configure_code(video_params({{"model", empty.string()}, {"architecture", "wan"}})) == "architecture_mismatch");

  auto stage = test::configure_stage("video_diffusion", video_params({})).stage;
  CHECK(test::error_code([&] { test::run_stage(*stage, video_inputs(12)); }) == "bad_shape");
  PortValues mismatched = video_inputs(16);
  mismatched["negative_conditioning"] = Value::embedding(video_conditioning(3, 6, 16));
  CHECK(test::error_code([&] { test::run_stage(*stage, mismatched); }) == "bad_shape");
  PortValues with_image = video_inputs(16);
  with_image["first_frame"] = Value::image(torch::rand({1, 3, 32, 32}));
  CHECK(test::error_code([&] { test::run_stage(*stage, with_image); }) == "unsupported_input");
  // Negative states of another length run the halves in two calls instead of failing.
  PortValues longer = video_inputs(16);
  longer["negative_conditioning"] = Value::embedding(video_conditioning(1, 9, 16));
  CHECK(test::run_stage(*stage, longer).outputs.at("video").tensor().size(1) == 5);
  CancellationToken cancel;
  cancel.cancel();
  CHECK(test::error_code([&] { test::run_stage(*stage, video_inputs(16), 1, &cancel); }) == "interrupted");
}

TEST_CASE("video_diffusion runs Wan and ModelScope pipeline folders built from the fixtures", "[video_diffusion]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/config.json");
  A2A_REQUIRE_FIXTURE("autoencoder_kl_wan/config.json");
  A2A_REQUIRE_FIXTURE("unet3d_condition/config.json");
  A2A_REQUIRE_FIXTURE("autoencoder_kl/config.json");
  A2A_REQUIRE_FIXTURE("scheduler_unipc_multistep/scheduler_config.json");
  A2A_REQUIRE_FIXTURE("hf_layouts/text-to-video-ms-1.7b/scheduler/scheduler_config.json");
  const fs::path wan = video_pipeline_folder("video_wan_folder", "WanPipeline",
                                             {{"transformer", "wan_transformer_3d"},
                                              {"vae", "autoencoder_kl_wan"},
                                              {"scheduler", "scheduler_unipc_multistep"}});
  // The tiny VAE fixture keeps Wan 2.1's 16 latent statistics beside z_dim 4, which WanPipeline's
  // view(1, z_dim, 1, 1, 1) refuses too: the folder's VAE keeps the first z_dim of them.
  auto vae_config = test::read_json((wan / "vae" / "config.json").string());
  const auto z_dim = vae_config.at("z_dim").get<size_t>();
  for (const char* key : {"latents_mean", "latents_std"}) {
    auto values = vae_config.at(key).get<std::vector<double>>();
    values.resize(z_dim);
    vae_config[key] = values;
  }
  test::write_text((wan / "vae" / "config.json").string(), vae_config.dump());
  const fs::path modelscope = video_pipeline_folder("video_ms_folder", "TextToVideoSDPipeline",
                                                    {{"unet", "unet3d_condition"},
                                                     {"vae", "autoencoder_kl"},
                                                     {"scheduler", "hf_layouts/text-to-video-ms-1.7b/scheduler"}});
  const auto wan_transformer = test::read_json(test::fixture_path("wan_transformer_3d/config.json"));
  const auto unet = test::read_json(test::fixture_path("unet3d_condition/config.json"));
  struct Case {
    fs::path folder;
    std::string architecture;
    int64_t conditioning_width;
  };
  for (const Case& c : {Case{wan, "wan", wan_transformer.at("text_dim").get<int64_t>()},
                        Case{modelscope, "unet3d", unet.at("cross_attention_dim").get<int64_t>()}}) {
    INFO(c.architecture);
    CHECK(video_architecture_of(c.folder.string()) == c.architecture);
    const VideoSizeRules rules = video_size_rules_of(c.folder.string(), c.architecture);
    const int64_t frames = 1 + 2 * rules.frame_step, side = 2 * rules.size_multiple;
    const Json params = {
        {"model", c.folder.string()}, {"steps", 2}, {"frames", frames}, {"width", side}, {"height", side}};
    const auto run = run_video_stage(params, video_inputs(c.conditioning_width));
    CHECK(run.outputs.at("video").tensor().sizes() == at::IntArrayRef({1, frames, 3, side, side}));
    CHECK(run.outputs.at("video").tensor().isfinite().all().item<bool>());
  }
}

TEST_CASE("e2e: configs/text_to_video.yaml writes an MP4 and a GIF with the requested frames and fps", "[e2e_video]") {
  const fs::path out = fs::path(test::fresh_dir("e2e_text_to_video")) / "out";
  const auto run = test::run_command("MODEL= " + std::string(A2A_BINARY_DIR) + "/a2a run " +
                                     std::string(A2A_SOURCE_DIR) + "/configs/text_to_video.yaml --output-dir " +
                                     out.string() + " --set stages.generate.frames=13 --set stages.generate.fps=12");
  INFO(run.output);
  REQUIRE(run.code == 0);
  const VideoData mp4 = read_video((out / "video.mp4").string());
  CHECK(mp4.frames.size(0) == 13);
  CHECK(mp4.fps == Approx(12.0));
  CHECK(mp4.frames.size(2) == 64);
  // What a browser's <video> plays: H.264 in yuv420p, the index before the data.
  const VideoStreamProbe probe = probe_video_file((out / "video.mp4").string());
  CHECK(probe.video_codec == "h264");
  CHECK(probe.pixel_format == "yuv420p");
  CHECK(probe.frames == 13);
  CHECK(probe.fps == Approx(12.0));
  CHECK(probe.index_first);
  const VideoData gif = read_video((out / "video.gif").string());
  CHECK(gif.frames.size(0) == 13);
  // Frames outside 1 + 4k are refused at validation, at the line of the parameter.
  const auto refused = test::run_command(std::string(A2A_BINARY_DIR) + "/a2a run " + std::string(A2A_SOURCE_DIR) +
                                         "/configs/text_to_video.yaml --output-dir " + out.string() +
                                         " --set stages.generate.frames=12");
  CHECK(refused.code != 0);
  CHECK(refused.output.find("bad_frames") != std::string::npos);
}
