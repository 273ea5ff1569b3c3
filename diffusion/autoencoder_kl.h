#pragma once
// diffusers' AutoencoderKL (0.29.2): the KL-regularised VAE of Stable Diffusion and AudioLDM.
// Keys: encoder.{conv_in,down_blocks,mid_block,conv_norm_out,conv_out}, quant_conv, post_quant_conv,
// decoder.{conv_in,mid_block,up_blocks,conv_norm_out,conv_out}.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/vae_blocks.h"
#include "weights/component_resolver.h"

namespace at {
class Generator;
}

namespace a2a {

class ConfigReader;

// Mirrors AutoencoderKL's config.json; defaults are the constructor's.
struct AutoencoderKLOptions {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<std::string> down_block_types = {"DownEncoderBlock2D"};
  std::vector<std::string> up_block_types = {"UpDecoderBlock2D"};
  std::vector<int64_t> block_out_channels = {64};
  int64_t layers_per_block = 1;
  std::string act_fn = "silu";
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  int64_t sample_size = 32;
  // Absent from old configs (SD 1.x's VAE says nothing): 0.18215 then.
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  std::optional<std::vector<double>> latents_mean;
  std::optional<std::vector<double>> latents_std;
  bool force_upcast = true;  // half-precision GPU runs only; fp32 ignores it
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  // Absent keys and null keep the defaults above.
  static AutoencoderKLOptions from_json(const nlohmann::json& config);
  // The same from a reader whose errors name the file (not a from_json overload: a braced JSON
  // literal argument would be ambiguous between the two).
  static AutoencoderKLOptions from_config(const ConfigReader& config);
  nlohmann::json to_json() const;
  // Spatial reduction from image to latent: 2^(number of blocks - 1).
  int64_t downscale_factor() const { return int64_t{1} << (block_out_channels.size() - 1); }

  // The tiny presets that stand in for a real VAE without weights: two blocks of 32 and 64 channels
  // (latent = image / 2), one resnet per encoder block. "image" is Stable Diffusion's layout (RGB, 4 latent
  // channels); "mel" is AudioLDM's (one-channel mel spectrogram, 8 latent channels, its scaling factor).
  static AutoencoderKLOptions tiny(const std::string& preset = "image");
};

// The posterior N(mean, exp(logvar)) over latents; logvar is clamped to [-30, 20] as in diffusers.
struct DiagonalGaussian {
  at::Tensor mean;
  at::Tensor logvar;
  at::Tensor std() const;
  // mean + std·ε with ε drawn from `generator` (the global generator when null).
  at::Tensor sample(at::Generator* generator = nullptr) const;
  at::Tensor mode() const { return mean; }
};

class VAEEncoderImpl : public torch::nn::Module {
 public:
  explicit VAEEncoderImpl(const AutoencoderKLOptions& options);
  at::Tensor forward(const at::Tensor& x);  // [B, in, H, W] -> [B, 2·latent, H/f, W/f]

  torch::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  vae::UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(VAEEncoder);

class VAEDecoderImpl : public torch::nn::Module {
 public:
  explicit VAEDecoderImpl(const AutoencoderKLOptions& options);
  at::Tensor forward(const at::Tensor& z);  // [B, latent, h, w] -> [B, out, h·f, w·f]

  torch::nn::Conv2d conv_in{nullptr};
  vae::UNetMidBlock2D mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(VAEDecoder);

// Overlapping-tile decoding for latents too large to decode at once. Tiles of tile_latent_size
// latent pixels start every tile_latent_size·(1 - overlap) pixels; each decoded tile is blended
// linearly into its upper and left neighbours over the overlap (diffusers' tiled_decode).
struct VAETiling {
  int64_t tile_latent_size = 64;
  double overlap = 0.25;
};

// The tiling scheme alone: decode_tile maps a latent tile [B, C, h, w] to [B, C', h·factor, w·factor].
// The result has exactly the untiled size. Tiles of a model with global statistics (GroupNorm, the
// mid-block attention) differ from the untiled result; the blending hides the seams.
at::Tensor decode_in_tiles(const at::Tensor& z, const VAETiling& tiling, int64_t factor,
                           const std::function<at::Tensor(const at::Tensor&)>& decode_tile);

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(AutoencoderKLOptions options);

  // x [B, in_channels, H, W] (images in [-1, 1]); H and W multiples of downscale_factor().
  DiagonalGaussian encode(const at::Tensor& x);
  // z [B, latent_channels, h, w], unscaled (divide by scaling_factor first). Tiled when `tiling` is
  // given and the latent is larger than one tile.
  at::Tensor decode(const at::Tensor& z, const std::optional<VAETiling>& tiling = std::nullopt);
  at::Tensor decode_tiled(const at::Tensor& z, const VAETiling& tiling);

  // Model-space latent -> diffusion-space latent: (z - shift_factor) · scaling_factor, and back.
  at::Tensor scale_latent(const at::Tensor& z) const;
  at::Tensor unscale_latent(const at::Tensor& latent) const;

  const AutoencoderKLOptions& options() const { return options_; }

  VAEEncoder encoder{nullptr};
  VAEDecoder decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr};       // null when use_quant_conv is false
  torch::nn::Conv2d post_quant_conv{nullptr};  // null when use_post_quant_conv is false

 private:
  AutoencoderKLOptions options_;
};
TORCH_MODULE(AutoencoderKL);

// The files of a diffusers AutoencoderKL folder, or of a pipeline folder's vae/, through the component resolver.
ResolvedComponent resolve_autoencoder_kl(const std::string& path);
// Strict loading (legacy attention names converted), cast to `dtype`, on `device`, in eval mode.
AutoencoderKL load_autoencoder_kl(const ResolvedComponent& files, const std::string& device = "cpu",
                                  at::ScalarType dtype = at::kFloat);

}  // namespace a2a
