#include "diffusion/unet3d_video_pipeline.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

UNet3DVideoPipeline::UNet3DVideoPipeline(UNet3DConditionModel unet, AutoencoderKL vae)
    : unet_(std::move(unet)), vae_(std::move(vae)), dtype_(unet_->conv_in->weight.scalar_type()) {
  const int64_t channels = vae_->options().latent_channels;
  if (unet_->options().in_channels != channels || unet_->options().out_channels != channels)
    throw_input_error("bad_config", "text-to-video pipeline: the UNet's in/out channels (" +
                                        std::to_string(unet_->options().in_channels) + ", " +
                                        std::to_string(unet_->options().out_channels) +
                                        ") must equal the VAE's latent_channels " + std::to_string(channels));
  if (!unet_->options().cross_attention_dim)
    throw_input_error("unsupported_model_config", "text-to-video pipeline: the UNet has no cross_attention_dim");
}

int64_t UNet3DVideoPipeline::conditioning_width() const { return *unet_->options().cross_attention_dim; }

VideoSizeRules UNet3DVideoPipeline::size_rules_of(const AutoencoderKLOptions& vae) {
  VideoSizeRules rules;
  rules.size_multiple = std::max<int64_t>(8, vae.downscale_factor());
  return rules;
}

VideoSizeRules UNet3DVideoPipeline::size_rules() const { return size_rules_of(vae_->options()); }

std::vector<int64_t> UNet3DVideoPipeline::latent_shape(int64_t batch, const VideoSize& size) const {
  const int64_t factor = vae_->options().downscale_factor();
  return {batch, vae_->options().latent_channels, size.frames, size.height / factor, size.width / factor};
}

at::Tensor UNet3DVideoPipeline::predict(const at::Tensor& latents, const at::Tensor& timestep,
                                        const at::Tensor& conditioning) {
  return unet_->forward(latents.to(dtype_), timestep, conditioning.to(dtype_)).to(at::kFloat);
}

at::Tensor UNet3DVideoPipeline::decode(const at::Tensor& latents,
                                       const std::function<void(int64_t, int64_t)>& on_progress) {
  const at::ScalarType vae_dtype = vae_->decoder->conv_in->weight.scalar_type();
  const at::Tensor folded = fold_frames(vae_->unscale_latent(latents.to(at::kFloat)));
  // One frame at a time: the reference decodes the folded batch in one call, and every frame is independent.
  std::vector<at::Tensor> frames;
  for (int64_t i = 0; i < folded.size(0); ++i) {
    frames.push_back(vae_->decode(folded.narrow(0, i, 1).to(vae_dtype)).to(at::kFloat));
    if (on_progress) on_progress(i + 1, folded.size(0));
  }
  const at::Tensor images = torch::cat(frames, 0);  // [B·F, 3, H, W]
  return (images / 2 + 0.5)
      .clamp(0, 1)
      .reshape({latents.size(0), latents.size(2), images.size(1), images.size(2), images.size(3)});
}

nlohmann::json UNet3DVideoPipeline::default_scheduler_config() const {
  // text-to-video-ms-1.7b's scheduler/scheduler_config.json.
  return {{"_class_name", "DDIMScheduler"}, {"beta_end", 0.012},         {"beta_schedule", "scaled_linear"},
          {"beta_start", 0.00085},          {"clip_sample", false},      {"num_train_timesteps", 1000},
          {"prediction_type", "epsilon"},   {"set_alpha_to_one", false}, {"steps_offset", 1}};
}

torch::nn::Module& UNet3DVideoPipeline::denoiser_module() { return *unet_; }

UNet3DConditionOptions UNet3DVideoPipeline::tiny_unet_options(int64_t conditioning_width) {
  UNet3DConditionOptions o;
  o.block_out_channels = {16, 32};
  o.down_block_types = {"CrossAttnDownBlock3D", "DownBlock3D"};
  o.up_block_types = {"UpBlock3D", "CrossAttnUpBlock3D"};
  o.layers_per_block = 1;
  o.norm_num_groups = 8;
  o.cross_attention_dim = conditioning_width;
  o.attention_head_dim = 4;
  return o;
}

}  // namespace a2a
