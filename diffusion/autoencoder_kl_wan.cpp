#include "diffusion/autoencoder_kl_wan.h"

#include <torch/torch.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "weights/component_resolver.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"

namespace a2a {

using wan_vae::causal_conv3d;
using wan_vae::ChannelRMSNorm;
using wan_vae::FeatureCache;
using wan_vae::MidBlock;
using wan_vae::ResampleMode;

namespace {

[[noreturn]] void wan_vae_bad_config(const std::string& source, const std::string& what) {
  throw_input_error("bad_config", source + ": " + what);
}

void wan_vae_validate(const AutoencoderKLWanOptions& o, const std::string& source) {
  if (o.base_dim <= 0 || o.z_dim <= 0 || o.num_res_blocks < 1) {
    wan_vae_bad_config(source, "base_dim, z_dim and num_res_blocks must be positive");
  }
  if (o.dim_mult.empty()) wan_vae_bad_config(source, "dim_mult is empty");
  for (auto m : o.dim_mult) {
    if (m <= 0) wan_vae_bad_config(source, "dim_mult entries must be positive");
  }
  if (o.temperal_downsample.size() + 1 < o.dim_mult.size()) {
    wan_vae_bad_config(source, "temperal_downsample needs one entry per down block after the first (" +
                                   std::to_string(o.dim_mult.size() - 1) + "), got " +
                                   std::to_string(o.temperal_downsample.size()));
  }
  // diffusers 0.33.1 builds encoder attention blocks for these scales but cannot call them with the
  // feature cache (WanAttentionBlock.forward takes no cache), so no working checkpoint has them.
  if (!o.attn_scales.empty())
    wan_vae_bad_config(source, "attn_scales must be empty (AutoencoderKLWan cannot run them)");
  if (o.dropout < 0.0 || o.dropout >= 1.0) wan_vae_bad_config(source, "dropout must be in [0, 1)");
  if (o.latents_mean.size() != o.latents_std.size()) {
    wan_vae_bad_config(source, "latents_mean and latents_std must have the same length");
  }
  for (double s : o.latents_std) {
    if (!(s > 0.0)) wan_vae_bad_config(source, "latents_std entries must be positive");
  }
}

}  // namespace

AutoencoderKLWanOptions AutoencoderKLWanOptions::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "AutoencoderKLWan config"));
}

AutoencoderKLWanOptions AutoencoderKLWanOptions::from_config(const ConfigReader& c) {
  if (!c.json().is_object()) wan_vae_bad_config(c.source(), "expected a JSON object");
  AutoencoderKLWanOptions o;
  o.base_dim = c.get_or("base_dim", o.base_dim);
  o.z_dim = c.get_or("z_dim", o.z_dim);
  o.dim_mult = c.get_or("dim_mult", o.dim_mult);
  o.num_res_blocks = c.get_or("num_res_blocks", o.num_res_blocks);
  o.attn_scales = c.get_or("attn_scales", o.attn_scales);
  o.temperal_downsample = c.get_or("temperal_downsample", o.temperal_downsample);
  o.dropout = c.get_or("dropout", o.dropout);
  o.latents_mean = c.get_or("latents_mean", o.latents_mean);
  o.latents_std = c.get_or("latents_std", o.latents_std);
  wan_vae_validate(o, c.source());
  return o;
}

nlohmann::json AutoencoderKLWanOptions::to_json() const {
  return {{"_class_name", "AutoencoderKLWan"},
          {"base_dim", base_dim},
          {"z_dim", z_dim},
          {"dim_mult", dim_mult},
          {"num_res_blocks", num_res_blocks},
          {"attn_scales", attn_scales},
          {"temperal_downsample", temperal_downsample},
          {"dropout", dropout},
          {"latents_mean", latents_mean},
          {"latents_std", latents_std}};
}

int64_t AutoencoderKLWanOptions::spatial_compression() const { return int64_t{1} << (dim_mult.size() - 1); }

int64_t AutoencoderKLWanOptions::temporal_compression() const {
  int64_t factor = 1;
  for (size_t i = 0; i + 1 < dim_mult.size(); ++i) {
    if (temperal_downsample[i]) factor *= 2;
  }
  return factor;
}

WanEncoder3dImpl::WanEncoder3dImpl(const AutoencoderKLWanOptions& o) {
  std::vector<int64_t> dims = {o.base_dim};
  for (auto m : o.dim_mult) dims.push_back(o.base_dim * m);
  conv_in = register_module("conv_in", causal_conv3d(3, dims[0], {3, 3, 3}, {1, 1, 1}, {1, 1, 1}));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    int64_t in_dim = dims[i];
    for (int64_t r = 0; r < o.num_res_blocks; ++r) {
      down_blocks->push_back(wan_vae::ResidualBlock(in_dim, dims[i + 1]));
      in_dim = dims[i + 1];
    }
    if (i + 1 != o.dim_mult.size()) {
      const auto mode = o.temperal_downsample[i] ? ResampleMode::Downsample3d : ResampleMode::Downsample2d;
      down_blocks->push_back(wan_vae::Resample(dims[i + 1], mode));
    }
  }
  mid_block = register_module("mid_block", MidBlock(dims.back()));
  norm_out = register_module("norm_out", ChannelRMSNorm(dims.back(), /*images=*/false));
  // The encoder emits the mean and the log-variance: 2·z_dim channels.
  conv_out = register_module("conv_out", causal_conv3d(dims.back(), 2 * o.z_dim, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}));
}

at::Tensor WanEncoder3dImpl::forward(const at::Tensor& input, FeatureCache& cache) {
  auto x = conv_in->forward_cached(input, cache);
  for (const auto& layer : *down_blocks) {
    if (auto* resnet = layer->as<wan_vae::ResidualBlockImpl>()) {
      x = resnet->forward(x, cache);
    } else {
      x = layer->as<wan_vae::ResampleImpl>()->forward(x, cache);
    }
  }
  x = mid_block->forward(x, cache);
  return conv_out->forward_cached(torch::silu(norm_out(x)), cache);
}

// Widths run dim_mult reversed, starting from its last entry; every upsampler halves its block's
// width, so the block after it takes half its predecessor's input width.
WanDecoder3dImpl::WanDecoder3dImpl(const AutoencoderKLWanOptions& o) {
  std::vector<int64_t> dims = {o.base_dim * o.dim_mult.back()};
  for (auto it = o.dim_mult.rbegin(); it != o.dim_mult.rend(); ++it) dims.push_back(o.base_dim * *it);
  const auto temperal_upsample = o.temperal_upsample();
  conv_in = register_module("conv_in", causal_conv3d(o.z_dim, dims[0], {3, 3, 3}, {1, 1, 1}, {1, 1, 1}));
  mid_block = register_module("mid_block", MidBlock(dims[0]));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    const int64_t in_dim = i > 0 ? dims[i] / 2 : dims[i];
    std::optional<ResampleMode> mode;
    if (i + 1 != o.dim_mult.size()) mode = temperal_upsample[i] ? ResampleMode::Upsample3d : ResampleMode::Upsample2d;
    up_blocks->push_back(wan_vae::UpBlock(in_dim, dims[i + 1], o.num_res_blocks, mode));
  }
  norm_out = register_module("norm_out", ChannelRMSNorm(dims.back(), /*images=*/false));
  conv_out = register_module("conv_out", causal_conv3d(dims.back(), 3, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}));
}

at::Tensor WanDecoder3dImpl::forward(const at::Tensor& z, FeatureCache& cache) {
  auto x = mid_block->forward(conv_in->forward_cached(z, cache), cache);
  for (const auto& block : *up_blocks) x = block->as<wan_vae::UpBlockImpl>()->forward(x, cache);
  return conv_out->forward_cached(torch::silu(norm_out(x)), cache);
}

AutoencoderKLWanImpl::AutoencoderKLWanImpl(AutoencoderKLWanOptions options) : options_(std::move(options)) {
  wan_vae_validate(options_, "AutoencoderKLWan options");
  const int64_t z = options_.z_dim;
  encoder = register_module("encoder", WanEncoder3d(options_));
  quant_conv = register_module("quant_conv", causal_conv3d(2 * z, 2 * z, {1, 1, 1}));
  post_quant_conv = register_module("post_quant_conv", causal_conv3d(z, z, {1, 1, 1}));
  decoder = register_module("decoder", WanDecoder3d(options_));
}

// Chunks of 1, 4, 4, ... frames through one cache, as the reference's _encode loop.
DiagonalGaussian AutoencoderKLWanImpl::encode(const at::Tensor& video) {
  if (!video.defined() || video.dim() != 5 || video.size(1) != 3 || video.size(2) < 1 || (video.size(2) - 1) % 4 != 0) {
    throw_input_error("bad_shape",
                      "AutoencoderKLWan.encode: expected a video [batch, 3, 1 + 4k frames, height, width], got " +
                          (video.defined() ? c10::str(video.sizes()) : std::string("nothing")));
  }
  FeatureCache cache;
  std::vector<at::Tensor> latents;
  for (int64_t start = 0; start < video.size(2); start += start == 0 ? 1 : 4) {
    cache.start_chunk();
    latents.push_back(encoder->forward(video.narrow(2, start, start == 0 ? 1 : 4), cache));
  }
  auto moments = quant_conv->forward(torch::cat(latents, 2));
  auto halves = moments.chunk(2, 1);
  return DiagonalGaussian{halves[0], halves[1].clamp(-30.0, 20.0)};
}

// Frame 0, then frames_per_chunk at a time through one cache; 1 is the reference's _decode loop.
at::Tensor AutoencoderKLWanImpl::decode(const at::Tensor& z, int64_t frames_per_chunk) {
  if (frames_per_chunk < 0) {
    throw_input_error(
        "bad_value", "AutoencoderKLWan.decode: frames_per_chunk must be >= 0, got " + std::to_string(frames_per_chunk));
  }
  if (!z.defined() || z.dim() != 5 || z.size(1) != options_.z_dim || z.size(2) < 1) {
    throw_input_error("bad_shape", "AutoencoderKLWan.decode: expected a latent [batch, " +
                                       std::to_string(options_.z_dim) + ", frames, height, width], got " +
                                       (z.defined() ? c10::str(z.sizes()) : std::string("nothing")));
  }
  auto x = post_quant_conv->forward(z);
  FeatureCache cache;
  std::vector<at::Tensor> frames;
  const int64_t total = x.size(2);
  for (int64_t start = 0; start < total;) {
    const int64_t length = start == 0 ? 1 : std::min(frames_per_chunk == 0 ? total : frames_per_chunk, total - start);
    cache.start_chunk();
    frames.push_back(decoder->forward(x.narrow(2, start, length), cache));
    start += length;
  }
  return torch::cat(frames, 2).clamp(-1.0, 1.0);
}

std::pair<at::Tensor, at::Tensor> AutoencoderKLWanImpl::latent_statistics(const at::Tensor& like) const {
  if (static_cast<int64_t>(options_.latents_mean.size()) != options_.z_dim || like.dim() != 5 ||
      like.size(1) != options_.z_dim) {
    throw_input_error("bad_shape", "AutoencoderKLWan latent normalisation: config latents_mean/latents_std have " +
                                       std::to_string(options_.latents_mean.size()) + " entries for z_dim " +
                                       std::to_string(options_.z_dim) + ", latent " + c10::str(like.sizes()));
  }
  auto as_tensor = [&](const std::vector<double>& values) {
    // torch.tensor(list of floats) is float32 before the pipeline moves it to the latent's dtype.
    return torch::tensor(std::vector<float>(values.begin(), values.end()))
        .view({1, options_.z_dim, 1, 1, 1})
        .to(like.device(), like.scalar_type());
  };
  return {as_tensor(options_.latents_mean), 1.0 / as_tensor(options_.latents_std)};
}

at::Tensor AutoencoderKLWanImpl::normalize_latent(const at::Tensor& z) const {
  auto [mean, inv_std] = latent_statistics(z);
  return (z - mean) * inv_std;
}

at::Tensor AutoencoderKLWanImpl::denormalize_latent(const at::Tensor& latent) const {
  auto [mean, inv_std] = latent_statistics(latent);
  return latent / inv_std + mean;
}

AutoencoderKLWan load_autoencoder_kl_wan(const std::string& path, const std::string& device, at::ScalarType dtype) {
  ComponentRequest request;
  request.component = "vae";
  request.who = "AutoencoderKLWan";
  request.hint = "give a diffusers AutoencoderKLWan folder or a Wan pipeline folder with vae/";
  const ResolvedComponent files = resolve_component(path, request);
  AutoencoderKLWan vae(AutoencoderKLWanOptions::from_config(files.config));
  LoadOptions options;
  options.device = device;
  options.dtype = dtype;
  options.source = files.folder;
  load_weights(*vae, files.weights, options);
  vae->eval();
  return vae;
}

}  // namespace a2a
