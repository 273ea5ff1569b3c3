#include "diffusion/video_pipeline.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/path_query.h"
#include "diffusion/unet3d_video_pipeline.h"
#include "diffusion/wan_video_pipeline.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "weights/config_reader.h"

#include <filesystem>

namespace a2a {

namespace fs = std::filesystem;

namespace {

// The sizes on either side of `value` that are `offset` plus a multiple of `step` (only the one above when
// the one below is not positive).
std::string nearest_sizes(int64_t value, int64_t step, int64_t offset) {
  const int64_t below = offset + std::max<int64_t>(0, (value - offset) / step) * step;
  const int64_t above = below + step;
  return below >= 1 ? std::to_string(below) + " or " + std::to_string(above) : std::to_string(above);
}

void check_architecture(const std::string& architecture) {
  for (const auto& known : video_architectures())
    if (architecture == known) return;
  throw_input_error("unknown_architecture", "video architecture '" + architecture + "' is not wan or unet3d");
}

}  // namespace

std::vector<std::string> VideoSizeRules::problems(const VideoSize& size) const {
  std::vector<std::string> out;
  if (size.frames < 1 || (size.frames - 1) % frame_step != 0)
    out.push_back("frames " + std::to_string(size.frames) + " must be 1 + " + std::to_string(frame_step) +
                  "·k (the VAE compresses every " + std::to_string(frame_step) + " frames after the first): try " +
                  nearest_sizes(std::max<int64_t>(size.frames, 1), frame_step, 1));
  for (auto [name, value] : {std::pair<const char*, int64_t>{"height", size.height}, {"width", size.width}}) {
    if (value < size_multiple || value % size_multiple != 0)
      out.push_back(std::string(name) + " " + std::to_string(value) + " must be a multiple of " +
                    std::to_string(size_multiple) + ": try " + nearest_sizes(value, size_multiple, 0));
  }
  return out;
}

at::Tensor fold_frames(const at::Tensor& latents) {
  return latents.permute({0, 2, 1, 3, 4}).reshape({-1, latents.size(1), latents.size(3), latents.size(4)});
}

at::Tensor unfold_frames(const at::Tensor& folded, int64_t batch) {
  return folded.reshape({batch, -1, folded.size(1), folded.size(2), folded.size(3)}).permute({0, 2, 1, 3, 4});
}

at::Tensor predict_in_two_calls(VideoPipeline& pipeline, const at::Tensor& latents, const at::Tensor& timestep,
                                const at::Tensor& negative, const at::Tensor& positive) {
  const auto halves = latents.chunk(2, 0);
  return torch::cat({pipeline.predict(halves[0], timestep, negative), pipeline.predict(halves[1], timestep, positive)},
                    0);
}

std::vector<std::string> video_architectures() { return {"wan", "unet3d"}; }

std::string video_architecture_of(const std::string& pipeline_folder) {
  const fs::path index = fs::path(pipeline_folder) / "model_index.json";
  if (!is_file(index))
    throw_input_error("missing_config", "'" + pipeline_folder +
                                            "' has no model_index.json: give a diffusers text-to-video pipeline "
                                            "folder (Wan2.1-T2V-1.3B-Diffusers, zeroscope_v2_576w, ...)");
  const ConfigReader config = ConfigReader::from_file(index.string());
  const std::string name = config.get<std::string>("_class_name", "");
  if (name == "WanPipeline") return "wan";
  if (name == "TextToVideoSDPipeline" || name == "VideoToVideoSDPipeline") return "unet3d";
  throw_input_error("unsupported_model_config",
                    index.string() + ": pipeline class '" + name +
                        "' is not a text-to-video pipeline this stage runs (WanPipeline, TextToVideoSDPipeline)");
}

VideoSizeRules video_size_rules_of(const std::string& pipeline_folder, const std::string& architecture) {
  check_architecture(architecture);
  const fs::path root(pipeline_folder);
  if (architecture == "wan") {
    return WanVideoPipeline::size_rules_of(
        WanTransformer3DOptions::from_config(ConfigReader::from_file((root / "transformer").string())),
        AutoencoderKLWanOptions::from_config(ConfigReader::from_file((root / "vae").string())));
  }
  return UNet3DVideoPipeline::size_rules_of(
      AutoencoderKLOptions::from_config(ConfigReader::from_file((root / "vae").string())));
}

VideoSizeRules tiny_video_size_rules(const std::string& architecture) {
  check_architecture(architecture);
  if (architecture == "wan")
    return WanVideoPipeline::size_rules_of(WanVideoPipeline::tiny_transformer_options(1),
                                           WanVideoPipeline::tiny_vae_options());
  return UNet3DVideoPipeline::size_rules_of(AutoencoderKLOptions::tiny());
}

std::shared_ptr<VideoPipeline> load_video_pipeline(const std::string& pipeline_folder, const std::string& architecture,
                                                   const std::string& device, at::ScalarType dtype) {
  check_architecture(architecture);
  if (architecture == "wan") {
    return std::make_shared<WanVideoPipeline>(load_wan_transformer_3d(pipeline_folder, "transformer", device, dtype),
                                              load_autoencoder_kl_wan(pipeline_folder, device, at::kFloat));
  }
  return std::make_shared<UNet3DVideoPipeline>(
      load_unet3d_condition(pipeline_folder, "unet", device, dtype),
      load_autoencoder_kl(resolve_autoencoder_kl(pipeline_folder), device, at::kFloat));
}

namespace {

template <class Model>
Model seeded(Model model, uint64_t seed, const std::string& device) {
  initialize_seeded_weights(*model, seed);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

}  // namespace

std::shared_ptr<VideoPipeline> tiny_video_pipeline(const std::string& architecture, int64_t conditioning_width,
                                                   uint64_t seed, const std::string& device, at::ScalarType dtype) {
  check_architecture(architecture);
  if (architecture == "wan") {
    auto transformer =
        seeded(WanTransformer3DModel(WanVideoPipeline::tiny_transformer_options(conditioning_width)), seed, device);
    cast_wan_transformer_3d(*transformer, dtype);
    return std::make_shared<WanVideoPipeline>(
        transformer, seeded(AutoencoderKLWan(WanVideoPipeline::tiny_vae_options()), seed + 1, device));
  }
  auto unet = seeded(UNet3DConditionModel(UNet3DVideoPipeline::tiny_unet_options(conditioning_width)), seed, device);
  cast_floating_point(*unet, dtype);
  return std::make_shared<UNet3DVideoPipeline>(unet,
                                               seeded(AutoencoderKL(AutoencoderKLOptions::tiny()), seed + 1, device));
}

}  // namespace a2a
