#pragma once
// What differs between diffusers' text-to-video pipelines (WanPipeline 0.33.1, TextToVideoSDPipeline 0.29.2)
// around the shared guided sampler: the latent geometry and its size rules, the denoiser call, the step
// layout, and the decoder. The video_diffusion stage drives either through this interface.
#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace a2a {

struct VideoSize {
  int64_t frames = 1;
  int64_t height = 0;
  int64_t width = 0;
};

// The sizes an architecture can generate: frames = 1 + frame_step·k, height and width multiples of
// size_multiple. Known from the configs alone, so that validation can apply them before any weight loads.
struct VideoSizeRules {
  int64_t frame_step = 1;
  int64_t size_multiple = 8;
  // One sentence per violated rule, naming the nearest sizes that work.
  std::vector<std::string> problems(const VideoSize& size) const;
};

class VideoPipeline {
 public:
  virtual ~VideoPipeline() = default;

  virtual std::string architecture() const = 0;  // "wan" or "unet3d"
  // The width D of the [B, N, D] conditioning the denoiser cross-attends to.
  virtual int64_t conditioning_width() const = 0;
  virtual VideoSizeRules size_rules() const = 0;
  // The initial noise's shape for `batch` videos of `size`.
  virtual std::vector<int64_t> latent_shape(int64_t batch, const VideoSize& size) const = 0;
  // The denoiser's float32 prediction for latents [B, C, f, h, w] at a 0-d timestep under [B, N, D].
  virtual at::Tensor predict(const at::Tensor& latents, const at::Tensor& timestep, const at::Tensor& conditioning) = 0;
  // Final latents -> frames [B, F, 3, H, W] in [0, 1]; on_progress(done, total) per decoded piece.
  virtual at::Tensor decode(const at::Tensor& latents, const std::function<void(int64_t, int64_t)>& on_progress) = 0;
  // TextToVideoSDPipeline steps its scheduler on the frames folded into the batch.
  virtual bool steps_on_folded_frames() const { return false; }
  // The scheduler_config.json used when the model folder has none (the tiny presets).
  virtual nlohmann::json default_scheduler_config() const = 0;
  virtual double default_fps() const = 0;
  virtual torch::nn::Module& denoiser_module() = 0;
};

// [B, C, F, h, w] -> [B·F, C, h, w], frame-major within each video, and back.
at::Tensor fold_frames(const at::Tensor& latents);
at::Tensor unfold_frames(const at::Tensor& folded, int64_t batch);

// Classifier-free guidance as the reference pipelines call it: `latents` holds the unconditional rows, then
// the conditional ones; each half goes through `predict` with its own conditioning (which may differ in length)
// and the predictions are concatenated. What a batched call over both halves must equal.
at::Tensor predict_in_two_calls(VideoPipeline& pipeline, const at::Tensor& latents, const at::Tensor& timestep,
                                const at::Tensor& negative, const at::Tensor& positive);

// "wan" for WanPipeline, "unet3d" for TextToVideoSDPipeline and VideoToVideoSDPipeline, from the folder's
// model_index.json. Throws a2a::Error: missing_config without one, unsupported_model_config for another
// pipeline class (WanImageToVideoPipeline among them).
std::string video_architecture_of(const std::string& pipeline_folder);

// The size rules of a pipeline folder, from its vae/ and transformer/ or unet/ configs.
VideoSizeRules video_size_rules_of(const std::string& pipeline_folder, const std::string& architecture);

// Loads a diffusers pipeline folder of the architecture: the denoiser in `dtype` (Wan keeps its float32
// modules), the VAE in float32, on `device`; strict loading. The scheduler is not part of it.
std::shared_ptr<VideoPipeline> load_video_pipeline(const std::string& pipeline_folder, const std::string& architecture,
                                                   const std::string& device, at::ScalarType dtype);

// A stand-in with seeded random weights at toy widths, with the real model's geometry: Wan's 8x spatial and
// 4x temporal VAE and 2x2 patches, or a 3-D UNet over the tiny Stable Diffusion VAE (2x spatial).
std::shared_ptr<VideoPipeline> tiny_video_pipeline(const std::string& architecture, int64_t conditioning_width,
                                                   uint64_t seed, const std::string& device, at::ScalarType dtype);
VideoSizeRules tiny_video_size_rules(const std::string& architecture);
std::vector<std::string> video_architectures();  // {"wan", "unet3d"}

}  // namespace a2a
