#pragma once
// The encoder and decoder blocks of diffusers' AutoencoderKL (unet_2d_blocks.py, 0.29.2), named like
// the checkpoint: resnets.M, attentions.0, downsamplers.0.conv, upsamplers.0.conv. They are the
// time-embedding-free variants the VAE builds, assembled from the shared ResnetBlock2D,
// Downsample2D, Upsample2D and Attention.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

namespace a2a::vae {

// resnets.0, then (attentions.i, resnets.i+1) per layer. The attention has one head of all channels
// when attention_head_dim equals the channel count (the VAE's choice), its own GroupNorm and a residual.
class UNetMidBlock2DImpl : public torch::nn::Module {
 public:
  UNetMidBlock2DImpl(int64_t channels, int64_t groups, double eps, const std::string& act_fn, bool add_attention,
                     int64_t attention_head_dim, int64_t num_layers = 1);
  at::Tensor forward(const at::Tensor& x);

  bool add_attention;
  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};
};
TORCH_MODULE(UNetMidBlock2D);

class DownEncoderBlock2DImpl : public torch::nn::Module {
 public:
  DownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups, double eps,
                         const std::string& act_fn, bool add_downsample, int64_t downsample_padding);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList downsamplers{nullptr};  // null without a downsampler
};
TORCH_MODULE(DownEncoderBlock2D);

class UpDecoderBlock2DImpl : public torch::nn::Module {
 public:
  UpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups, double eps,
                       const std::string& act_fn, bool add_upsample);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};  // null without an upsampler
};
TORCH_MODULE(UpDecoderBlock2D);

}  // namespace a2a::vae
