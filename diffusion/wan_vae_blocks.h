#pragma once
// The blocks of diffusers' AutoencoderKLWan (autoencoder_kl_wan.py, 0.33.1), named like the
// checkpoint: the causal 3-D convolution (weight, bias), the channel RMS norm (gamma), resampling
// (resample.1, time_conv), residual blocks (norm1, conv1, norm2, conv2, conv_shortcut), the
// single-head attention (norm, to_qkv, proj), the mid block and the decoder's up blocks.
//
// Video goes through them chunk by chunk; a FeatureCache carries, for every causal convolution in
// call order, the last frames it saw in the previous chunk (the reference's feat_cache / feat_idx).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace a2a::wan_vae {

// Frames each causal convolution keeps for the next chunk (the reference's CACHE_T).
constexpr int64_t kCacheFrames = 2;

class FeatureCache {
 public:
  struct Slot {
    bool seen = false;  // a chunk has passed (the upsampler's "Rep" when `frames` is still empty)
    at::Tensor frames;  // the last input frames of the previous chunk, at most kCacheFrames
  };
  // Every chunk walks the slots from the first again.
  void start_chunk() { next_ = 0; }
  // The slot of the next cached layer in call order; new slots are added on the first chunk.
  Slot& next_slot();
  size_t size() const { return slots_.size(); }

 private:
  std::vector<Slot> slots_;
  size_t next_ = 0;
};

// nn.Conv3d with causal time padding: 2·pad_t zero frames before the first frame (or the cached
// frames of the previous chunk in their place), none after; spatial padding on both sides.
class CausalConv3dImpl : public torch::nn::Module {
 public:
  using Triple = std::array<int64_t, 3>;  // (time, height, width)
  CausalConv3dImpl(int64_t in_channels, int64_t out_channels, Triple kernel, Triple stride = {1, 1, 1},
                   Triple padding = {0, 0, 0});
  // x [B, C, T, H, W]; `previous` [B, C, t, H, W] the frames before x (undefined: zeros).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& previous = {});
  // Reads the next slot as `previous` and stores x's last frames in it.
  at::Tensor forward_cached(const at::Tensor& x, FeatureCache& cache);

  at::Tensor weight;
  at::Tensor bias;

 private:
  Triple stride_;
  Triple padding_;
};
TORCH_MODULE(CausalConv3d);

// The holder's forwarding constructor cannot take braced (time, height, width) triples; this can.
CausalConv3d causal_conv3d(int64_t in_channels, int64_t out_channels, CausalConv3dImpl::Triple kernel,
                           CausalConv3dImpl::Triple stride = {1, 1, 1}, CausalConv3dImpl::Triple padding = {0, 0, 0});

// WanRMS_norm: F.normalize(x, dim=1) · sqrt(C) · gamma (+ bias), over the channels of [B, C, ...].
// gamma is [C, 1, 1] for images ([B, C, H, W]) and [C, 1, 1, 1] for video ([B, C, T, H, W]).
class ChannelRMSNormImpl : public torch::nn::Module {
 public:
  ChannelRMSNormImpl(int64_t channels, bool images, bool with_bias = false);
  at::Tensor forward(const at::Tensor& x);

  at::Tensor gamma;
  at::Tensor bias;  // undefined without bias (diffusers' 0.0)

 private:
  double scale_;
};
TORCH_MODULE(ChannelRMSNorm);

enum class ResampleMode { Upsample2d, Upsample3d, Downsample2d, Downsample3d };

// Per-frame 2x spatial resampling (nearest-exact + conv to dim/2 channels, or zero pad + stride-2
// conv), and for the 3d modes a causal time convolution that doubles or halves the frames. The first
// chunk passes through the time path unchanged: frame 0 is never duplicated nor merged.
class ResampleImpl : public torch::nn::Module {
 public:
  ResampleImpl(int64_t dim, ResampleMode mode);
  at::Tensor forward(const at::Tensor& x, FeatureCache& cache);

  torch::nn::Sequential resample{nullptr};  // index 0 has no weights, 1 is the Conv2d
  CausalConv3d time_conv{nullptr};          // the 3d modes only

 private:
  at::Tensor upsample_time(const at::Tensor& x, FeatureCache::Slot& slot);
  at::Tensor downsample_time(const at::Tensor& x, FeatureCache::Slot& slot);
  ResampleMode mode_;
};
TORCH_MODULE(Resample);

// x + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) with a 1x1x1 conv_shortcut when the widths differ.
// Dropout is the identity at inference.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in_dim, int64_t out_dim);
  at::Tensor forward(const at::Tensor& x, FeatureCache& cache);

  ChannelRMSNorm norm1{nullptr};
  CausalConv3d conv1{nullptr};
  ChannelRMSNorm norm2{nullptr};
  CausalConv3d conv2{nullptr};
  CausalConv3d conv_shortcut{nullptr};  // null when in_dim == out_dim
};
TORCH_MODULE(ResidualBlock);

// Single-head self-attention over the pixels of each frame separately, with a residual.
class AttentionBlockImpl : public torch::nn::Module {
 public:
  explicit AttentionBlockImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x);

  ChannelRMSNorm norm{nullptr};
  torch::nn::Conv2d to_qkv{nullptr};
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(AttentionBlock);

// resnets.0, then (attentions.i, resnets.i+1) per layer.
class MidBlockImpl : public torch::nn::Module {
 public:
  explicit MidBlockImpl(int64_t dim, int64_t num_layers = 1);
  at::Tensor forward(const at::Tensor& x, FeatureCache& cache);

  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};
};
TORCH_MODULE(MidBlock);

// num_res_blocks + 1 residual blocks, then upsamplers.0 when an upsample mode is given.
class UpBlockImpl : public torch::nn::Module {
 public:
  UpBlockImpl(int64_t in_dim, int64_t out_dim, int64_t num_res_blocks, std::optional<ResampleMode> upsample_mode);
  at::Tensor forward(const at::Tensor& x, FeatureCache& cache);

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};  // null without an upsampler
};
TORCH_MODULE(UpBlock);

}  // namespace a2a::wan_vae
