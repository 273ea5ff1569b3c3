#include "diffusion/wan_video_pipeline.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

WanVideoPipeline::WanVideoPipeline(WanTransformer3DModel transformer, AutoencoderKLWan vae)
    : transformer_(std::move(transformer)), vae_(std::move(vae)) {
  const int64_t in = transformer_->options().in_channels, z = vae_->options().z_dim;
  if (in != z || transformer_->options().resolved_out_channels() != z)
    throw_input_error("bad_config", "Wan pipeline: the transformer's in/out channels (" + std::to_string(in) + ", " +
                                        std::to_string(transformer_->options().resolved_out_channels()) +
                                        ") must equal the VAE's z_dim " + std::to_string(z));
}

int64_t WanVideoPipeline::conditioning_width() const { return transformer_->options().text_dim; }

VideoSizeRules WanVideoPipeline::size_rules_of(const WanTransformer3DOptions& transformer,
                                               const AutoencoderKLWanOptions& vae) {
  VideoSizeRules rules;
  rules.frame_step = vae.temporal_compression() * transformer.patch_size.at(0);
  rules.size_multiple =
      vae.spatial_compression() * std::max(transformer.patch_size.at(1), transformer.patch_size.at(2));
  return rules;
}

VideoSizeRules WanVideoPipeline::size_rules() const { return size_rules_of(transformer_->options(), vae_->options()); }

std::vector<int64_t> WanVideoPipeline::latent_shape(int64_t batch, const VideoSize& size) const {
  const auto& vae = vae_->options();
  const int64_t spatial = vae.spatial_compression();
  return {batch, vae.z_dim, (size.frames - 1) / vae.temporal_compression() + 1, size.height / spatial,
          size.width / spatial};
}

at::Tensor WanVideoPipeline::predict(const at::Tensor& latents, const at::Tensor& timestep,
                                     const at::Tensor& conditioning) {
  return transformer_->forward(latents, timestep.expand({latents.size(0)}), conditioning).to(at::kFloat);
}

at::Tensor WanVideoPipeline::decode(const at::Tensor& latents,
                                    const std::function<void(int64_t, int64_t)>& on_progress) {
  const at::Tensor video = vae_->decode(vae_->denormalize_latent(latents.to(at::kFloat)));
  if (on_progress) on_progress(1, 1);
  // [B, 3, F, H, W] in [-1, 1] -> [B, F, 3, H, W] in [0, 1], as the video processor's postprocess.
  return (video / 2 + 0.5).clamp(0, 1).permute({0, 2, 1, 3, 4}).contiguous();
}

nlohmann::json WanVideoPipeline::default_scheduler_config() const {
  // Wan2.1-T2V-1.3B-Diffusers' scheduler/scheduler_config.json.
  return {{"_class_name", "UniPCMultistepScheduler"},
          {"beta_end", 0.02},
          {"beta_schedule", "linear"},
          {"beta_start", 0.0001},
          {"disable_corrector", nlohmann::json::array()},
          {"dynamic_thresholding_ratio", 0.995},
          {"final_sigmas_type", "zero"},
          {"flow_shift", 3.0},
          {"lower_order_final", true},
          {"num_train_timesteps", 1000},
          {"predict_x0", true},
          {"prediction_type", "flow_prediction"},
          {"sample_max_value", 1.0},
          {"solver_order", 2},
          {"solver_type", "bh2"},
          {"steps_offset", 0},
          {"thresholding", false},
          {"timestep_spacing", "linspace"},
          {"use_flow_sigmas", true}};
}

torch::nn::Module& WanVideoPipeline::denoiser_module() { return *transformer_; }

WanTransformer3DOptions WanVideoPipeline::tiny_transformer_options(int64_t conditioning_width) {
  WanTransformer3DOptions o;
  o.num_attention_heads = 2;
  o.attention_head_dim = 12;  // rotary dims t, h, w = 4, 4, 4
  o.in_channels = 4;
  o.out_channels = 4;
  o.text_dim = conditioning_width;
  o.freq_dim = 32;
  o.ffn_dim = 48;
  o.num_layers = 2;
  o.rope_max_seq_len = 64;
  return o;
}

AutoencoderKLWanOptions WanVideoPipeline::tiny_vae_options() {
  AutoencoderKLWanOptions o;  // Wan 2.1's 8x spatial, 4x temporal geometry at toy width
  o.base_dim = 8;
  o.z_dim = 4;
  o.dim_mult = {1, 2, 2, 2};
  o.num_res_blocks = 1;
  o.latents_mean.resize(4);  // the first four channels of Wan 2.1's statistics
  o.latents_std.resize(4);
  return o;
}

}  // namespace a2a
