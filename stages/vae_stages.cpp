// vae_encode (image -> scaled latent) and vae_decode (latent -> image in [0, 1]) around AutoencoderKL.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "diffusion/autoencoder_kl.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"

namespace a2a {
namespace {

// The dtype the VAE computes in: the pipeline's, except float16 when the config sets force_upcast, where
// diffusers runs the VAE in float32 because its float16 activations overflow.
at::ScalarType vae_dtype(const AutoencoderKLOptions& options, const ConfigureContext& ctx) {
  const at::ScalarType dtype = dtype_from_name(ctx.dtype);
  return dtype == at::kHalf && options.force_upcast ? at::kFloat : dtype;
}

std::shared_ptr<AutoencoderKLImpl> vae_for(const Json& params, const ConfigureContext& ctx) {
  const std::string model = param_string(params, "model");
  if (model.empty()) {
    const std::string preset = param_string(params, "preset");
    const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
    const at::ScalarType dtype = vae_dtype(AutoencoderKLOptions::tiny(preset), ctx);
    auto create = [&] {
      AutoencoderKL vae(AutoencoderKLOptions::tiny(preset));
      initialize_seeded_weights(*vae, seed);
      cast_floating_point(*vae, dtype);
      vae->to(torch::Device(ctx.device));
      vae->eval();
      return vae.ptr();
    };
    // vae_encode and vae_decode with the same preset and seed share one module.
    const std::string key =
        "vae:tiny:" + preset + ":" + std::to_string(seed) + ":" + ctx.device + ":" + dtype_name(dtype);
    return ctx.shared_module<AutoencoderKLImpl>(key, create);
  }
  // The config alone first: the dtype depends on its force_upcast.
  const ResolvedComponent files = resolve_autoencoder_kl(ctx.resolve_path(model));
  const at::ScalarType dtype = vae_dtype(AutoencoderKLOptions::from_config(files.config), ctx);
  auto create = [&] { return load_autoencoder_kl(files, ctx.device, dtype).ptr(); };
  return ctx.shared_module<AutoencoderKLImpl>("vae:" + files.weights + ":" + ctx.device + ":" + dtype_name(dtype),
                                              create);
}

std::vector<ParamSpec> common_params() {
  return {
      param_spec("model", ParamType::Path, "",
                 "diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors) or a pipeline "
                 "folder with vae/; empty = tiny built-in preset"),
      choice_param("preset", "image", {"image", "mel"},
                   "tiny preset layout: image (RGB, 4 latent channels) or mel (1 channel, 8 latent channels, "
                   "AudioLDM's scaling factor)"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
}

class VaeEncodeStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    vae_ = vae_for(params, ctx);
    sample_ = param_string(params, "sample_mode") == "sample";
    device_ = ctx.device;
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const auto& o = vae_->options();
    const Value* image = optional_input(inputs, "image");
    const Value* sample = optional_input(inputs, "sample");
    if ((image == nullptr) == (sample == nullptr)) {
      throw_input_error("bad_inputs",
                        "vae_encode: give exactly one of `image` ([B,3,H,W] in [0,1]) and `sample` "
                        "(a [B," +
                            std::to_string(o.in_channels) + ",H,W] tensor in model space)");
    }
    at::Tensor x;
    if (image) {
      x = image->tensor().to(torch::kFloat) * 2.0 - 1.0;
      // A one-channel VAE (AudioLDM's mel) takes the image's grey level.
      if (o.in_channels == 1 && x.size(1) == 3) x = x.mean(1, /*keepdim=*/true);
    } else {
      x = sample->tensor().to(torch::kFloat);
    }
    const int64_t factor = o.downscale_factor();
    if (x.dim() != 4 || x.size(1) != o.in_channels || x.size(2) % factor != 0 || x.size(3) % factor != 0) {
      throw_input_error("bad_shape", "vae_encode: input " + c10::str(x.sizes()) + " must be [B, " +
                                         std::to_string(o.in_channels) + ", H, W] with H and W multiples of " +
                                         std::to_string(factor));
    }
    const DiagonalGaussian moments = vae_->encode(x.to(torch::Device(device_), floating_point_dtype(*vae_)));
    // The posterior in float32: the noise is drawn in float32 whatever the VAE's dtype.
    const DiagonalGaussian posterior{moments.mean.to(torch::kFloat), moments.logvar.to(torch::kFloat)};
    at::Tensor z;
    if (sample_) {
      auto generator = at::detail::createCPUGenerator(ctx.seed);
      auto noise = at::randn(posterior.mean.sizes(), generator, posterior.mean.options().device(torch::kCPU));
      z = posterior.mean + posterior.std() * noise.to(posterior.mean.device());
    } else {
      z = posterior.mode();
    }
    ctx.report_progress(1, 1, "encoded");
    return {{"latent", Value::latent(vae_->scale_latent(z).to(torch::kCPU))}};
  }

  torch::nn::Module* module() override { return vae_.get(); }

 private:
  std::shared_ptr<AutoencoderKLImpl> vae_;
  bool sample_ = true;
  std::string device_ = "cpu";
};

class VaeDecodeStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    vae_ = vae_for(params, ctx);
    device_ = ctx.device;
    if (param_bool(params, "tiling")) {
      VAETiling tiling;
      const int64_t size = param_int(params, "tile_size");
      tiling.tile_latent_size =
          size > 0 ? size : std::max<int64_t>(1, vae_->options().sample_size / vae_->options().downscale_factor());
      tiling.overlap = param_float(params, "tile_overlap");
      tiling_ = tiling;
    }
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const auto& o = vae_->options();
    const at::Tensor& latent = input(inputs, "latent").tensor();
    if (latent.dim() != 4 || latent.size(1) != o.latent_channels) {
      throw_input_error("bad_shape", "vae_decode: latent " + c10::str(latent.sizes()) + " must be [B, " +
                                         std::to_string(o.latent_channels) + ", h, w]");
    }
    auto z = vae_->unscale_latent(latent.to(torch::Device(device_), torch::kFloat)).to(floating_point_dtype(*vae_));
    auto sample = vae_->decode(z, tiling_).to(torch::kCPU, torch::kFloat);
    ctx.report_progress(1, 1, "decoded");
    auto rgb = (sample / 2.0 + 0.5).clamp(0.0, 1.0);
    if (rgb.size(1) == 1) rgb = rgb.expand({-1, 3, -1, -1}).contiguous();
    PortValues out;
    out["image"] = Value::image(rgb);
    out["sample"] = Value::tensor(sample);
    return out;
  }

  torch::nn::Module* module() override { return vae_.get(); }

 private:
  std::shared_ptr<AutoencoderKLImpl> vae_;
  std::optional<VAETiling> tiling_;
  std::string device_ = "cpu";
};

StageInfo vae_encode_info() {
  StageInfo info;
  info.type = "vae_encode";
  info.description =
      "AutoencoderKL encoder: an image in [0, 1] (or a model-space tensor such as a mel spectrogram) to a latent "
      "scaled for diffusion, (z - shift_factor) · scaling_factor. It computes in the pipeline's dtype (float32 for "
      "float16 when the config sets force_upcast, as diffusers does; attention softmax in float32); the latent "
      "comes out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = common_params();
  info.params.push_back(choice_param("sample_mode", "sample", {"sample", "mean"},
                                     "draw z from the posterior (seeded by the run) or take its mean"));
  info.ports.inputs = {optional_in_port("image", ValueType::Image, "[B,3,H,W] in [0,1]"),
                       optional_in_port("sample", ValueType::Tensor, "[B,in_channels,H,W] in model space")};
  info.ports.outputs = {out_port("latent", ValueType::Latent, "[B,latent_channels,H/f,W/f], scaled")};
  info.create = [] { return std::make_unique<VaeEncodeStage>(); };
  return info;
}

StageInfo vae_decode_info() {
  StageInfo info;
  info.type = "vae_decode";
  info.description =
      "AutoencoderKL decoder: a scaled latent to an image in [0, 1] (and the raw decoder output, e.g. AudioLDM's "
      "mel spectrogram). Optional tiled decoding bounds memory for large latents. It computes in the pipeline's "
      "dtype (float32 for float16 when the config sets force_upcast, as diffusers does; attention softmax in "
      "float32); image and sample come out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = common_params();
  info.params.push_back(param_spec("tiling", ParamType::Bool, false, "decode in overlapping tiles"));
  info.params.push_back(ranged_param("tile_size", ParamType::Int, 0, 0, 4096,
                                     "tile size in latent pixels; 0 = sample_size / downscale factor"));
  info.params.push_back(ranged_param("tile_overlap", ParamType::Float, 0.25, 0.0, 0.9,
                                     "fraction of a tile shared "
                                     "with its neighbours"));
  info.ports.inputs = {in_port("latent", ValueType::Latent, "[B,latent_channels,h,w], scaled")};
  info.ports.outputs = {out_port("image", ValueType::Image, "[B,3,H,W] in [0,1] (one channel repeated to three)"),
                        out_port("sample", ValueType::Tensor, "[B,out_channels,H,W] raw decoder output")};
  info.create = [] { return std::make_unique<VaeDecodeStage>(); };
  return info;
}

A2A_REGISTER_STAGE(vae_encode_info);
A2A_REGISTER_STAGE(vae_decode_info);

}  // namespace
}  // namespace a2a
