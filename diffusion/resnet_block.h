#pragma once
// diffusers' ResnetBlock2D, Downsample2D and Upsample2D (resnet.py, downsampling.py, upsampling.py of
// diffusers 0.29.2), named like their state_dict: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut;
// Downsample2D/Upsample2D hold `conv`.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace a2a {

// diffusers' get_activation: "swish"/"silu", "mish", "gelu", "relu" (case-insensitive).
enum class DiffusersActivation { SiLU, Mish, GELU, ReLU };
// Throws a2a::Error (code "unsupported_activation") for any other name.
DiffusersActivation parse_diffusers_activation(const std::string& name);
at::Tensor apply_activation(DiffusersActivation activation, const at::Tensor& x);

struct ResnetBlock2DOptions {
  int64_t in_channels = 0;
  std::optional<int64_t> out_channels;         // in_channels when unset
  std::optional<int64_t> temb_channels = 512;  // unset: no time_emb_proj (VAE blocks pass None)
  int64_t groups = 32;
  std::optional<int64_t> groups_out;  // groups when unset
  double eps = 1e-6;
  double dropout = 0.0;  // inference only: identity
  std::string non_linearity = "swish";
  bool skip_time_act = false;
  std::string time_embedding_norm = "default";  // "default" (add) or "scale_shift"
  double output_scale_factor = 1.0;
  std::optional<bool> use_in_shortcut;  // in_channels != conv_2d_out_channels when unset
  bool conv_shortcut_bias = true;
  std::optional<int64_t> conv_2d_out_channels;  // out_channels when unset
};

// The pre-norm residual block: x + conv2(drop(act(norm2(conv1(act(norm1(x))) + proj(act(temb)))))),
// divided by output_scale_factor. The up/down variants (FIR, sde_vp) are not part of this class.
class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& options);
  // x [B, in, H, W]; temb [B, temb_channels] or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});

  const ResnetBlock2DOptions& options() const { return options_; }

  torch::nn::GroupNorm norm1{nullptr};
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};  // null without temb_channels
  torch::nn::GroupNorm norm2{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Conv2d conv2{nullptr};
  torch::nn::Conv2d conv_shortcut{nullptr};  // null when the shortcut is the identity

 private:
  ResnetBlock2DOptions options_;
  DiffusersActivation activation_;
};
TORCH_MODULE(ResnetBlock2D);

struct Downsample2DOptions {
  int64_t channels = 0;
  bool use_conv = false;  // false: 2x2 average pooling
  std::optional<int64_t> out_channels;
  // 0 means diffusers' asymmetric (0,1,0,1) zero padding before the stride-2 conv (VAE encoder).
  int64_t padding = 1;
  int64_t kernel_size = 3;
  bool bias = true;
};

// Halves H and W. The conv is registered as `conv` (diffusers' name="op" used by every UNet/VAE block).
class Downsample2DImpl : public torch::nn::Module {
 public:
  explicit Downsample2DImpl(const Downsample2DOptions& options);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv{nullptr};  // null with use_conv = false

 private:
  Downsample2DOptions options_;
};
TORCH_MODULE(Downsample2D);

struct Upsample2DOptions {
  int64_t channels = 0;
  bool use_conv = false;
  bool use_conv_transpose = false;
  std::optional<int64_t> out_channels;
  std::optional<int64_t> kernel_size;  // 3 for conv, 4 for conv transpose when unset
  int64_t padding = 1;
  bool bias = true;
  bool interpolate = true;
};

// Nearest-neighbour 2x upsampling followed by an optional 3x3 conv named `conv`.
class Upsample2DImpl : public torch::nn::Module {
 public:
  explicit Upsample2DImpl(const Upsample2DOptions& options);
  // output_size: explicit [H, W] for the interpolation (the UNet passes it for sizes that are not
  // multiples of 2^num_upsamplers); empty means scale factor 2.
  at::Tensor forward(const at::Tensor& x, const std::vector<int64_t>& output_size = {});

  torch::nn::Conv2d conv{nullptr};
  torch::nn::ConvTranspose2d conv_transpose{nullptr};  // registered as `conv` when used

 private:
  Upsample2DOptions options_;
};
TORCH_MODULE(Upsample2D);

}  // namespace a2a
