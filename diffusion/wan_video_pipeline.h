#pragma once
// diffusers' WanPipeline (0.33.1) around its models: latents [B, z_dim, 1 + (F - 1)/4, H/8, W/8] drawn in
// float32, the transformer's flow prediction on them, and the VAE's decode of latents / (1 / latents_std) +
// latents_mean, clamped to [-1, 1] and mapped to [0, 1].
#include "diffusion/autoencoder_kl_wan.h"
#include "diffusion/video_pipeline.h"
#include "diffusion/wan_transformer_3d.h"

namespace a2a {

class WanVideoPipeline : public VideoPipeline {
 public:
  WanVideoPipeline(WanTransformer3DModel transformer, AutoencoderKLWan vae);

  std::string architecture() const override { return "wan"; }
  int64_t conditioning_width() const override;
  VideoSizeRules size_rules() const override;
  std::vector<int64_t> latent_shape(int64_t batch, const VideoSize& size) const override;
  at::Tensor predict(const at::Tensor& latents, const at::Tensor& timestep, const at::Tensor& conditioning) override;
  at::Tensor decode(const at::Tensor& latents, const std::function<void(int64_t, int64_t)>& on_progress) override;
  nlohmann::json default_scheduler_config() const override;
  double default_fps() const override { return 16.0; }  // Wan 2.1's export_to_video(fps=16)
  torch::nn::Module& denoiser_module() override;

  // The size rules of a transformer and VAE configuration: frames 1 + temporal_compression·k, sides
  // multiples of the VAE's spatial compression times the patch.
  static VideoSizeRules size_rules_of(const WanTransformer3DOptions& transformer, const AutoencoderKLWanOptions& vae);
  // The tiny preset's configurations (conditioning_width = text_dim).
  static WanTransformer3DOptions tiny_transformer_options(int64_t conditioning_width);
  static AutoencoderKLWanOptions tiny_vae_options();

 private:
  WanTransformer3DModel transformer_;
  AutoencoderKLWan vae_;
};

}  // namespace a2a
