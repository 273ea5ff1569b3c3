#include "diffusion/autoencoder_kl.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "diffusion/resnet_block.h"
#include "nn/dtype.h"
#include "weights/component_resolver.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"
#include "weights/state_dict.h"

namespace a2a {

namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}

torch::nn::Conv2d conv1x1(int64_t channels) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 1));
}

// The VAE's blocks all use eps 1e-6, not GroupNorm's default 1e-5.
constexpr double kVaeNormEps = 1e-6;

}  // namespace

AutoencoderKLOptions AutoencoderKLOptions::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "AutoencoderKL config"));
}

// Absent or null fields keep the defaults (get_or), as diffusers' None does.
AutoencoderKLOptions AutoencoderKLOptions::from_config(const ConfigReader& c) {
  AutoencoderKLOptions o;
  o.in_channels = c.get_or("in_channels", o.in_channels);
  o.out_channels = c.get_or("out_channels", o.out_channels);
  o.down_block_types = c.get_or("down_block_types", o.down_block_types);
  o.up_block_types = c.get_or("up_block_types", o.up_block_types);
  o.block_out_channels = c.get_or("block_out_channels", o.block_out_channels);
  o.layers_per_block = c.get_or("layers_per_block", o.layers_per_block);
  o.act_fn = c.get_or("act_fn", o.act_fn);
  o.latent_channels = c.get_or("latent_channels", o.latent_channels);
  o.norm_num_groups = c.get_or("norm_num_groups", o.norm_num_groups);
  const auto sizes = c.json().find("sample_size");
  if (sizes != c.json().end() && sizes->is_array() && !sizes->empty()) {
    o.sample_size = c.require<std::vector<int64_t>>("sample_size")[0];
  } else if (sizes == c.json().end() || !sizes->is_array()) {
    o.sample_size = c.get_or("sample_size", o.sample_size);
  }
  o.scaling_factor = c.get_or("scaling_factor", o.scaling_factor);
  if (auto v = c.get_optional<double>("shift_factor")) o.shift_factor = v;
  if (auto v = c.get_optional<std::vector<double>>("latents_mean")) o.latents_mean = v;
  if (auto v = c.get_optional<std::vector<double>>("latents_std")) o.latents_std = v;
  o.force_upcast = c.get_or("force_upcast", o.force_upcast);
  o.use_quant_conv = c.get_or("use_quant_conv", o.use_quant_conv);
  o.use_post_quant_conv = c.get_or("use_post_quant_conv", o.use_post_quant_conv);
  o.mid_block_add_attention = c.get_or("mid_block_add_attention", o.mid_block_add_attention);

  auto bad = [](const std::string& what) { throw_input_error("bad_config", "AutoencoderKL config: " + what); };
  if (o.block_out_channels.empty()) bad("block_out_channels is empty");
  if (o.down_block_types.size() != o.block_out_channels.size() ||
      o.up_block_types.size() != o.block_out_channels.size()) {
    bad("down_block_types, up_block_types and block_out_channels must have the same length");
  }
  for (const auto& t : o.down_block_types) {
    if (t != "DownEncoderBlock2D") bad("unsupported down block type \"" + t + "\" (DownEncoderBlock2D)");
  }
  for (const auto& t : o.up_block_types) {
    if (t != "UpDecoderBlock2D") bad("unsupported up block type \"" + t + "\" (UpDecoderBlock2D)");
  }
  if (o.in_channels <= 0 || o.out_channels <= 0 || o.latent_channels <= 0 || o.layers_per_block <= 0) {
    bad("in_channels, out_channels, latent_channels and layers_per_block must be positive");
  }
  parse_diffusers_activation(o.act_fn);  // throws for unknown names
  return o;
}

nlohmann::json AutoencoderKLOptions::to_json() const {
  nlohmann::json j = {{"_class_name", "AutoencoderKL"},
                      {"in_channels", in_channels},
                      {"out_channels", out_channels},
                      {"down_block_types", down_block_types},
                      {"up_block_types", up_block_types},
                      {"block_out_channels", block_out_channels},
                      {"layers_per_block", layers_per_block},
                      {"act_fn", act_fn},
                      {"latent_channels", latent_channels},
                      {"norm_num_groups", norm_num_groups},
                      {"sample_size", sample_size},
                      {"scaling_factor", scaling_factor},
                      {"force_upcast", force_upcast},
                      {"use_quant_conv", use_quant_conv},
                      {"use_post_quant_conv", use_post_quant_conv},
                      {"mid_block_add_attention", mid_block_add_attention}};
  j["shift_factor"] = shift_factor ? nlohmann::json(*shift_factor) : nlohmann::json(nullptr);
  j["latents_mean"] = latents_mean ? nlohmann::json(*latents_mean) : nlohmann::json(nullptr);
  j["latents_std"] = latents_std ? nlohmann::json(*latents_std) : nlohmann::json(nullptr);
  return j;
}

at::Tensor DiagonalGaussian::std() const { return torch::exp(0.5 * logvar); }

at::Tensor DiagonalGaussian::sample(at::Generator* generator) const {
  auto noise =
      generator ? at::randn(mean.sizes(), *generator, mean.options()) : at::randn(mean.sizes(), mean.options());
  return mean + std() * noise;
}

VAEEncoderImpl::VAEEncoderImpl(const AutoencoderKLOptions& o) {
  const auto& channels = o.block_out_channels;
  conv_in = register_module("conv_in", conv3x3(o.in_channels, channels[0]));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t output_channel = channels[0];
  for (size_t i = 0; i < channels.size(); ++i) {
    const int64_t input_channel = output_channel;
    output_channel = channels[i];
    const bool is_final = i + 1 == channels.size();
    down_blocks->push_back(vae::DownEncoderBlock2D(input_channel, output_channel, o.layers_per_block, o.norm_num_groups,
                                                   kVaeNormEps, o.act_fn, !is_final, /*downsample_padding=*/0));
  }
  mid_block = register_module("mid_block", vae::UNetMidBlock2D(channels.back(), o.norm_num_groups, kVaeNormEps,
                                                               o.act_fn, o.mid_block_add_attention, channels.back()));
  conv_norm_out = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, channels.back()).eps(kVaeNormEps)));
  conv_out = register_module("conv_out", conv3x3(channels.back(), 2 * o.latent_channels));
}

at::Tensor VAEEncoderImpl::forward(const at::Tensor& x) {
  auto h = conv_in(x);
  for (size_t i = 0; i < down_blocks->size(); ++i) h = down_blocks->at<vae::DownEncoderBlock2DImpl>(i).forward(h);
  h = mid_block(h);
  // The encoder's and decoder's final activation is SiLU whatever act_fn says.
  return conv_out(torch::silu(conv_norm_out(h)));
}

VAEDecoderImpl::VAEDecoderImpl(const AutoencoderKLOptions& o) {
  const auto& channels = o.block_out_channels;
  conv_in = register_module("conv_in", conv3x3(o.latent_channels, channels.back()));
  mid_block = register_module("mid_block", vae::UNetMidBlock2D(channels.back(), o.norm_num_groups, kVaeNormEps,
                                                               o.act_fn, o.mid_block_add_attention, channels.back()));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  std::vector<int64_t> reversed(channels.rbegin(), channels.rend());
  int64_t output_channel = reversed[0];
  for (size_t i = 0; i < reversed.size(); ++i) {
    const int64_t prev_output_channel = output_channel;
    output_channel = reversed[i];
    const bool is_final = i + 1 == reversed.size();
    up_blocks->push_back(vae::UpDecoderBlock2D(prev_output_channel, output_channel, o.layers_per_block + 1,
                                               o.norm_num_groups, kVaeNormEps, o.act_fn, !is_final));
  }
  conv_norm_out = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.norm_num_groups, channels[0]).eps(kVaeNormEps)));
  conv_out = register_module("conv_out", conv3x3(channels[0], o.out_channels));
}

at::Tensor VAEDecoderImpl::forward(const at::Tensor& z) {
  auto h = mid_block(conv_in(z));
  for (size_t i = 0; i < up_blocks->size(); ++i) h = up_blocks->at<vae::UpDecoderBlock2DImpl>(i).forward(h);
  return conv_out(torch::silu(conv_norm_out(h)));
}

AutoencoderKLImpl::AutoencoderKLImpl(AutoencoderKLOptions options) : options_(std::move(options)) {
  encoder = register_module("encoder", VAEEncoder(options_));
  decoder = register_module("decoder", VAEDecoder(options_));
  if (options_.use_quant_conv) quant_conv = register_module("quant_conv", conv1x1(2 * options_.latent_channels));
  if (options_.use_post_quant_conv)
    post_quant_conv = register_module("post_quant_conv", conv1x1(options_.latent_channels));
}

DiagonalGaussian AutoencoderKLImpl::encode(const at::Tensor& x) {
  if (!x.defined() || x.dim() != 4 || x.size(1) != options_.in_channels) {
    throw_input_error("bad_shape", "AutoencoderKL.encode: expected [batch, " + std::to_string(options_.in_channels) +
                                       ", height, width], got " + (x.defined() ? c10::str(x.sizes()) : "nothing"));
  }
  auto moments = encoder(x);
  if (quant_conv) moments = quant_conv(moments);
  auto halves = moments.chunk(2, 1);
  return DiagonalGaussian{halves[0], halves[1].clamp(-30.0, 20.0)};
}

at::Tensor AutoencoderKLImpl::decode(const at::Tensor& z, const std::optional<VAETiling>& tiling) {
  if (!z.defined() || z.dim() != 4 || z.size(1) != options_.latent_channels) {
    throw_input_error("bad_shape", "AutoencoderKL.decode: expected a latent [batch, " +
                                       std::to_string(options_.latent_channels) + ", height, width], got " +
                                       (z.defined() ? c10::str(z.sizes()) : "nothing"));
  }
  if (tiling && (z.size(2) > tiling->tile_latent_size || z.size(3) > tiling->tile_latent_size)) {
    return decode_tiled(z, *tiling);
  }
  return decoder(post_quant_conv ? post_quant_conv(z) : z);
}

at::Tensor decode_in_tiles(const at::Tensor& z, const VAETiling& tiling, int64_t factor,
                           const std::function<at::Tensor(const at::Tensor&)>& decode_tile) {
  if (tiling.tile_latent_size < 1 || tiling.overlap < 0.0 || tiling.overlap >= 1.0 || factor < 1) {
    throw_input_error("bad_tiling", "VAE tiling: tile size must be at least 1 and overlap in [0, 1)");
  }
  const int64_t tile = tiling.tile_latent_size;
  const int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(tile * (1.0 - tiling.overlap)));
  // Each tile keeps stride·factor pixels and blends the rest into its neighbours, so the result has
  // exactly the untiled size (diffusers' row_limit and blend_extent when they are consistent).
  const int64_t kept = stride * factor;
  const int64_t blend = tile * factor - kept;

  // b's first rows fade in from a's last rows: b[y] = a[-e + y]·(1 - y/e) + b[y]·(y/e).
  auto blend_into = [](const at::Tensor& a, const at::Tensor& b, int64_t extent, int64_t dim) {
    extent = std::min({a.size(dim), b.size(dim), extent});
    if (extent <= 0) return b;
    std::vector<int64_t> shape(static_cast<size_t>(b.dim()), 1);
    shape[static_cast<size_t>(dim)] = extent;
    auto w = torch::arange(extent, b.options()).div(static_cast<double>(extent)).view(shape);
    auto head = a.narrow(dim, a.size(dim) - extent, extent) * (1.0 - w) + b.narrow(dim, 0, extent) * w;
    return torch::cat({head, b.narrow(dim, extent, b.size(dim) - extent)}, dim);
  };

  std::vector<std::vector<at::Tensor>> tiles;
  for (int64_t i = 0; i < z.size(2); i += stride) {
    std::vector<at::Tensor> row;
    for (int64_t j = 0; j < z.size(3); j += stride) {
      row.push_back(
          decode_tile(z.narrow(2, i, std::min(tile, z.size(2) - i)).narrow(3, j, std::min(tile, z.size(3) - j))));
    }
    tiles.push_back(std::move(row));
  }
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < tiles.size(); ++i) {
    std::vector<at::Tensor> kept_tiles;
    for (size_t j = 0; j < tiles[i].size(); ++j) {
      // Blended in place, as the reference does: later tiles see their neighbours' blended values.
      if (i > 0) tiles[i][j] = blend_into(tiles[i - 1][j], tiles[i][j], blend, 2);
      if (j > 0) tiles[i][j] = blend_into(tiles[i][j - 1], tiles[i][j], blend, 3);
      const auto& t = tiles[i][j];
      kept_tiles.push_back(t.narrow(2, 0, std::min(kept, t.size(2))).narrow(3, 0, std::min(kept, t.size(3))));
    }
    rows.push_back(torch::cat(kept_tiles, 3));
  }
  return torch::cat(rows, 2);
}

at::Tensor AutoencoderKLImpl::decode_tiled(const at::Tensor& z, const VAETiling& tiling) {
  return decode_in_tiles(z, tiling, options_.downscale_factor(), [this](const at::Tensor& piece) {
    return decoder(post_quant_conv ? post_quant_conv(piece) : piece);
  });
}

at::Tensor AutoencoderKLImpl::scale_latent(const at::Tensor& z) const {
  return (z - options_.shift_factor.value_or(0.0)) * options_.scaling_factor;
}

at::Tensor AutoencoderKLImpl::unscale_latent(const at::Tensor& latent) const {
  return latent / options_.scaling_factor + options_.shift_factor.value_or(0.0);
}

AutoencoderKLOptions AutoencoderKLOptions::tiny(const std::string& preset) {
  AutoencoderKLOptions o;
  o.block_out_channels = {32, 64};
  o.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D"};
  o.up_block_types = {"UpDecoderBlock2D", "UpDecoderBlock2D"};
  o.layers_per_block = 1;
  o.norm_num_groups = 8;
  o.sample_size = 32;
  if (preset == "mel") {
    o.in_channels = 1;
    o.out_channels = 1;
    o.latent_channels = 8;
    o.scaling_factor = 0.9392935633659363;
  }
  return o;
}

ResolvedComponent resolve_autoencoder_kl(const std::string& path) {
  ComponentRequest request;
  request.component = "vae";
  request.who = "VAE";
  request.hint = "give a diffusers AutoencoderKL folder or a pipeline folder with vae/";
  return resolve_component(path, request);
}

AutoencoderKL load_autoencoder_kl(const ResolvedComponent& files, const std::string& device, at::ScalarType dtype) {
  AutoencoderKL vae(AutoencoderKLOptions::from_config(files.config));
  LoadOptions options;
  options.convert = convert_legacy_vae_attention;
  options.device = device;
  options.dtype = dtype;
  options.source = files.folder;
  load_weights(*vae, files.weights, options);
  cast_floating_point(*vae, dtype);
  vae->eval();
  return vae;
}

}  // namespace a2a
