#pragma once
// diffusers' AutoencoderKLWan (0.33.1): Wan 2.1's causal 3-D video VAE. Keys: encoder.{conv_in,
// down_blocks.N, mid_block, norm_out, conv_out}, quant_conv, post_quant_conv, decoder.{conv_in,
// mid_block, up_blocks.N, norm_out, conv_out}. Videos are encoded in chunks of 1 then 4 frames and
// decoded one latent frame at a time, with a feature cache carrying frames between chunks, so that
// activations never span the whole video.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "diffusion/autoencoder_kl.h"  // DiagonalGaussian
#include "diffusion/wan_vae_blocks.h"

namespace a2a {

class ConfigReader;

// Mirrors AutoencoderKLWan's config.json; defaults are the constructor's (Wan 2.1).
struct AutoencoderKLWanOptions {
  int64_t base_dim = 96;
  int64_t z_dim = 16;
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<double> attn_scales;  // must stay empty (see from_config)
  // Spelled as in diffusers. Entry i says whether down block i also halves the frames; the decoder
  // reads the list reversed.
  std::vector<bool> temperal_downsample = {false, true, true};
  double dropout = 0.0;  // training only
  std::vector<double> latents_mean = {-0.7571, -0.7089, -0.9113, 0.1075,  -0.1745, 0.9653,  -0.1517, 1.5508,
                                      0.4134,  -0.0715, 0.5517,  -0.3632, -0.1922, -0.9497, 0.2503,  -0.2921};
  std::vector<double> latents_std = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                                     3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160};

  // Absent keys and null keep the defaults; "bad_config" errors otherwise.
  static AutoencoderKLWanOptions from_json(const nlohmann::json& config);
  static AutoencoderKLWanOptions from_config(const ConfigReader& config);
  nlohmann::json to_json() const;

  // Spatial reduction from video to latent: 2^(len(dim_mult) - 1).
  int64_t spatial_compression() const;
  // Temporal reduction of every frame after the first: 2^(time downsamples used).
  int64_t temporal_compression() const;
  // The decoder's time upsampling flags: temperal_downsample reversed.
  std::vector<bool> temperal_upsample() const { return {temperal_downsample.rbegin(), temperal_downsample.rend()}; }
};

class WanEncoder3dImpl : public torch::nn::Module {
 public:
  explicit WanEncoder3dImpl(const AutoencoderKLWanOptions& options);
  // One chunk [B, 3, T, H, W] -> [B, 2·z_dim, t, H/s, W/s].
  at::Tensor forward(const at::Tensor& x, wan_vae::FeatureCache& cache);

  wan_vae::CausalConv3d conv_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};  // residual blocks and resamplers, in order
  wan_vae::MidBlock mid_block{nullptr};
  wan_vae::ChannelRMSNorm norm_out{nullptr};
  wan_vae::CausalConv3d conv_out{nullptr};
};
TORCH_MODULE(WanEncoder3d);

class WanDecoder3dImpl : public torch::nn::Module {
 public:
  explicit WanDecoder3dImpl(const AutoencoderKLWanOptions& options);
  // One latent chunk [B, z_dim, t, h, w] -> [B, 3, T, h·s, w·s].
  at::Tensor forward(const at::Tensor& z, wan_vae::FeatureCache& cache);

  wan_vae::CausalConv3d conv_in{nullptr};
  wan_vae::MidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  wan_vae::ChannelRMSNorm norm_out{nullptr};
  wan_vae::CausalConv3d conv_out{nullptr};
};
TORCH_MODULE(WanDecoder3d);

class AutoencoderKLWanImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLWanImpl(AutoencoderKLWanOptions options);

  // video [B, 3, F, H, W] in [-1, 1] with F = 1 + 4k -> the posterior over [B, z_dim, 1 + k·4/c, h, w]
  // latents (c = temporal_compression()).
  DiagonalGaussian encode(const at::Tensor& video);
  // z [B, z_dim, F', h, w] (model space) -> [B, 3, F, H, W] clamped to [-1, 1]. Latent frame 0 is
  // its own chunk (the time upsamplers' first-chunk rule); the rest go frames_per_chunk at a time
  // through the cache (0: all in one chunk). The reference decodes one frame per chunk.
  at::Tensor decode(const at::Tensor& z, int64_t frames_per_chunk = 1);

  // Model space -> the transformer's space: (z - latents_mean) / latents_std per channel, and back,
  // computed as the Wan pipeline does (through 1 / std in the latent's dtype).
  at::Tensor normalize_latent(const at::Tensor& z) const;
  at::Tensor denormalize_latent(const at::Tensor& latent) const;

  const AutoencoderKLWanOptions& options() const { return options_; }

  WanEncoder3d encoder{nullptr};
  wan_vae::CausalConv3d quant_conv{nullptr};
  wan_vae::CausalConv3d post_quant_conv{nullptr};
  WanDecoder3d decoder{nullptr};

 private:
  // latents_mean and 1 / latents_std as [1, z_dim, 1, 1, 1] in like's dtype and device.
  std::pair<at::Tensor, at::Tensor> latent_statistics(const at::Tensor& like) const;
  AutoencoderKLWanOptions options_;
};
TORCH_MODULE(AutoencoderKLWan);

// A diffusers AutoencoderKLWan folder, or a pipeline folder with vae/, through the component
// resolver; strict loading (every tensor named, none extra), in eval mode.
AutoencoderKLWan load_autoencoder_kl_wan(const std::string& path, const std::string& device = "cpu",
                                         at::ScalarType dtype = at::kFloat);

}  // namespace a2a
