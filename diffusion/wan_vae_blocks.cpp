#include "diffusion/wan_vae_blocks.h"

#include <torch/torch.h>

#include <cmath>

#include "nn/attention.h"

namespace a2a::wan_vae {

namespace {

// The last `count` frames (fewer when x has fewer), copied so that the cache does not keep the
// whole chunk's activation alive.
at::Tensor wan_vae_last_frames(const at::Tensor& x, int64_t count) {
  const int64_t n = std::min(count, x.size(2));
  return x.narrow(2, x.size(2) - n, n).clone();
}

// [B, C, T, H, W] -> [B·T, C, H, W] and back: the 2-D layers see every frame as an image.
at::Tensor wan_vae_frames_as_images(const at::Tensor& x) {
  return x.permute({0, 2, 1, 3, 4}).reshape({x.size(0) * x.size(2), x.size(1), x.size(3), x.size(4)});
}

at::Tensor wan_vae_images_as_frames(const at::Tensor& images, int64_t batch, int64_t frames) {
  return images.view({batch, frames, images.size(1), images.size(2), images.size(3)}).permute({0, 2, 1, 3, 4});
}

}  // namespace

CausalConv3d causal_conv3d(int64_t in_channels, int64_t out_channels, CausalConv3dImpl::Triple kernel,
                           CausalConv3dImpl::Triple stride, CausalConv3dImpl::Triple padding) {
  return CausalConv3d(std::make_shared<CausalConv3dImpl>(in_channels, out_channels, kernel, stride, padding));
}

FeatureCache::Slot& FeatureCache::next_slot() {
  if (next_ == slots_.size()) slots_.emplace_back();
  return slots_[next_++];
}

CausalConv3dImpl::CausalConv3dImpl(int64_t in_channels, int64_t out_channels, Triple kernel, Triple stride,
                                   Triple padding)
    : stride_(stride), padding_(padding) {
  weight = register_parameter("weight", torch::empty({out_channels, in_channels, kernel[0], kernel[1], kernel[2]}));
  bias = register_parameter("bias", torch::empty({out_channels}));
  // nn.Conv3d's default initialisation; checkpoints overwrite it.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_channels * kernel[0] * kernel[1] * kernel[2]));
  torch::nn::init::uniform_(bias, -bound, bound);
}

at::Tensor CausalConv3dImpl::forward(const at::Tensor& x, const at::Tensor& previous) {
  at::Tensor input = x;
  int64_t front = 2 * padding_[0];
  if (previous.defined() && front > 0) {
    input = torch::cat({previous.to(x.device()), x}, 2);
    front -= previous.size(2);
  }
  input = at::constant_pad_nd(input, {padding_[2], padding_[2], padding_[1], padding_[1], front, 0}, 0.0);
  return at::conv3d(input, weight, bias, {stride_[0], stride_[1], stride_[2]});
}

at::Tensor CausalConv3dImpl::forward_cached(const at::Tensor& x, FeatureCache& cache) {
  auto& slot = cache.next_slot();
  auto keep = wan_vae_last_frames(x, kCacheFrames);
  // A one-frame chunk keeps the previous chunk's last frame before its own.
  if (keep.size(2) < kCacheFrames && slot.frames.defined()) {
    keep = torch::cat({slot.frames.narrow(2, slot.frames.size(2) - 1, 1), keep}, 2);
  }
  auto y = forward(x, slot.frames);
  slot.frames = keep;
  slot.seen = true;
  return y;
}

ChannelRMSNormImpl::ChannelRMSNormImpl(int64_t channels, bool images, bool with_bias)
    : scale_(std::sqrt(static_cast<double>(channels))) {
  std::vector<int64_t> shape = images ? std::vector<int64_t>{channels, 1, 1} : std::vector<int64_t>{channels, 1, 1, 1};
  gamma = register_parameter("gamma", torch::ones(shape));
  if (with_bias) bias = register_parameter("bias", torch::zeros(shape));
}

at::Tensor ChannelRMSNormImpl::forward(const at::Tensor& x) {
  namespace F = torch::nn::functional;
  auto y = F::normalize(x, F::NormalizeFuncOptions().dim(1)) * scale_ * gamma;
  return bias.defined() ? y + bias : y;
}

ResampleImpl::ResampleImpl(int64_t dim, ResampleMode mode) : mode_(mode) {
  resample = register_module("resample", torch::nn::Sequential());
  const bool up = mode == ResampleMode::Upsample2d || mode == ResampleMode::Upsample3d;
  if (up) {
    // WanUpsample: nearest-exact x2 in float32, back to the input's dtype.
    resample->push_back(torch::nn::Functional([](const at::Tensor& x) {
      const std::vector<double> scales = {2.0, 2.0};
      return at::_upsample_nearest_exact2d(x.to(at::kFloat), c10::nullopt, c10::optional<at::ArrayRef<double>>(scales))
          .to(x.scalar_type());
    }));
    resample->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim / 2, 3).padding(1)));
  } else {
    resample->push_back(torch::nn::ZeroPad2d(torch::nn::ZeroPad2dOptions({0, 1, 0, 1})));
    resample->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 3).stride(2)));
  }
  if (mode == ResampleMode::Upsample3d) {
    time_conv = register_module("time_conv", causal_conv3d(dim, dim * 2, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}));
  } else if (mode == ResampleMode::Downsample3d) {
    time_conv = register_module("time_conv", causal_conv3d(dim, dim, {3, 1, 1}, {2, 1, 1}));
  }
}

at::Tensor ResampleImpl::forward(const at::Tensor& input, FeatureCache& cache) {
  at::Tensor x = input;
  if (mode_ == ResampleMode::Upsample3d) x = upsample_time(x, cache.next_slot());
  const int64_t batch = x.size(0), frames = x.size(2);
  x = wan_vae_images_as_frames(resample->forward(wan_vae_frames_as_images(x)), batch, frames);
  if (mode_ == ResampleMode::Downsample3d) x = downsample_time(x, cache.next_slot());
  return x;
}

// The first chunk passes unchanged and leaves the slot "seen" with no frames (the reference's "Rep");
// later chunks get 2C channels from the time conv, which become two frames per input frame.
at::Tensor ResampleImpl::upsample_time(const at::Tensor& x, FeatureCache::Slot& slot) {
  if (!slot.seen) {
    slot.seen = true;
    return x;
  }
  auto keep = wan_vae_last_frames(x, kCacheFrames);
  if (keep.size(2) < kCacheFrames) {
    auto before = slot.frames.defined() ? slot.frames.narrow(2, slot.frames.size(2) - 1, 1) : torch::zeros_like(keep);
    keep = torch::cat({before, keep}, 2);
  }
  auto y = time_conv->forward(x, slot.frames);
  slot.frames = keep;
  const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  y = y.reshape({b, 2, c, t, h, w});
  return torch::stack({y.select(1, 0), y.select(1, 1)}, 3).reshape({b, c, t * 2, h, w});
}

// The first chunk is cached whole and passes unchanged; later chunks are convolved (stride 2 in
// time) after the previous chunk's last frame.
at::Tensor ResampleImpl::downsample_time(const at::Tensor& x, FeatureCache::Slot& slot) {
  if (!slot.frames.defined()) {
    slot.frames = x.clone();
    slot.seen = true;
    return x;
  }
  auto keep = wan_vae_last_frames(x, 1);
  auto y = time_conv->forward(torch::cat({slot.frames.narrow(2, slot.frames.size(2) - 1, 1), x}, 2));
  slot.frames = keep;
  return y;
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in_dim, int64_t out_dim) {
  norm1 = register_module("norm1", ChannelRMSNorm(in_dim, /*images=*/false));
  conv1 = register_module("conv1", causal_conv3d(in_dim, out_dim, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}));
  norm2 = register_module("norm2", ChannelRMSNorm(out_dim, /*images=*/false));
  conv2 = register_module("conv2", causal_conv3d(out_dim, out_dim, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}));
  if (in_dim != out_dim) conv_shortcut = register_module("conv_shortcut", causal_conv3d(in_dim, out_dim, {1, 1, 1}));
}

at::Tensor ResidualBlockImpl::forward(const at::Tensor& x, FeatureCache& cache) {
  auto h = conv_shortcut ? conv_shortcut->forward(x) : x;
  auto y = conv1->forward_cached(torch::silu(norm1(x)), cache);
  y = conv2->forward_cached(torch::silu(norm2(y)), cache);
  return y + h;
}

AttentionBlockImpl::AttentionBlockImpl(int64_t dim) {
  norm = register_module("norm", ChannelRMSNorm(dim, /*images=*/true));
  to_qkv = register_module("to_qkv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim * 3, 1)));
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 1)));
}

at::Tensor AttentionBlockImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  auto images = norm(wan_vae_frames_as_images(x));
  // [B·T, 3C, H, W] -> [B·T, 1, H·W, 3C]: one head, pixels as tokens, then q, k, v of C channels.
  auto qkv = to_qkv(images).reshape({b * t, 1, c * 3, -1}).permute({0, 1, 3, 2}).contiguous();
  auto parts = qkv.chunk(3, -1);
  auto attended = scaled_dot_product_attention(parts[0], parts[1], parts[2]);
  attended = attended.squeeze(1).permute({0, 2, 1}).reshape({b * t, c, h, w});
  return wan_vae_images_as_frames(proj(attended), b, t) + x;
}

MidBlockImpl::MidBlockImpl(int64_t dim, int64_t num_layers) {
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets = register_module("resnets", torch::nn::ModuleList());
  resnets->push_back(ResidualBlock(dim, dim));
  for (int64_t i = 0; i < num_layers; ++i) {
    attentions->push_back(AttentionBlock(dim));
    resnets->push_back(ResidualBlock(dim, dim));
  }
}

at::Tensor MidBlockImpl::forward(const at::Tensor& input, FeatureCache& cache) {
  auto x = resnets->at<ResidualBlockImpl>(0).forward(input, cache);
  for (size_t i = 0; i < attentions->size(); ++i) {
    x = attentions->at<AttentionBlockImpl>(i).forward(x);
    x = resnets->at<ResidualBlockImpl>(i + 1).forward(x, cache);
  }
  return x;
}

UpBlockImpl::UpBlockImpl(int64_t in_dim, int64_t out_dim, int64_t num_res_blocks,
                         std::optional<ResampleMode> upsample_mode) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  int64_t current = in_dim;
  for (int64_t i = 0; i < num_res_blocks + 1; ++i) {
    resnets->push_back(ResidualBlock(current, out_dim));
    current = out_dim;
  }
  if (upsample_mode) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsamplers->push_back(Resample(out_dim, *upsample_mode));
  }
}

at::Tensor UpBlockImpl::forward(const at::Tensor& input, FeatureCache& cache) {
  at::Tensor x = input;
  for (size_t i = 0; i < resnets->size(); ++i) x = resnets->at<ResidualBlockImpl>(i).forward(x, cache);
  if (upsamplers) x = upsamplers->at<ResampleImpl>(0).forward(x, cache);
  return x;
}

}  // namespace a2a::wan_vae
