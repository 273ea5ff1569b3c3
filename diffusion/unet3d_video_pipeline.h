#pragma once
// diffusers' TextToVideoSDPipeline (0.29.2), ModelScope's and Zeroscope's pipeline: latents
// [B, 4, F, H/8, W/8] scaled by init_noise_sigma, the UNet3DConditionModel's noise prediction, the scheduler
// stepping on the frames folded into the batch, and Stable Diffusion's VAE decoding frame by frame after
// dividing by its scaling_factor (0.18215).
#include "diffusion/autoencoder_kl.h"
#include "diffusion/unet3d_condition.h"
#include "diffusion/video_pipeline.h"

namespace a2a {

class UNet3DVideoPipeline : public VideoPipeline {
 public:
  UNet3DVideoPipeline(UNet3DConditionModel unet, AutoencoderKL vae);

  std::string architecture() const override { return "unet3d"; }
  int64_t conditioning_width() const override;
  VideoSizeRules size_rules() const override;
  std::vector<int64_t> latent_shape(int64_t batch, const VideoSize& size) const override;
  at::Tensor predict(const at::Tensor& latents, const at::Tensor& timestep, const at::Tensor& conditioning) override;
  at::Tensor decode(const at::Tensor& latents, const std::function<void(int64_t, int64_t)>& on_progress) override;
  bool steps_on_folded_frames() const override { return true; }
  nlohmann::json default_scheduler_config() const override;
  double default_fps() const override { return 8.0; }
  torch::nn::Module& denoiser_module() override;

  // Sides must be multiples of 8, as the pipeline checks, and of the VAE's factor when that is larger.
  static VideoSizeRules size_rules_of(const AutoencoderKLOptions& vae);
  // The tiny preset's UNet: two blocks of 16 and 32 channels over the tiny Stable Diffusion VAE's latents.
  static UNet3DConditionOptions tiny_unet_options(int64_t conditioning_width);

 private:
  UNet3DConditionModel unet_;
  AutoencoderKL vae_;
  at::ScalarType dtype_;
};

}  // namespace a2a
