#include "diffusion/vae_blocks.h"

#include <torch/torch.h>

#include "base/error.h"
#include "diffusion/attention_processor.h"
#include "diffusion/resnet_block.h"

namespace a2a::vae {

namespace {

ResnetBlock2D resnet(int64_t in_channels, int64_t out_channels, int64_t groups, double eps, const std::string& act_fn) {
  if (groups <= 0 || in_channels % groups != 0 || out_channels % groups != 0) {
    throw_input_error("bad_config", "VAE block: " + std::to_string(in_channels) + " -> " +
                                        std::to_string(out_channels) + " channels are not divisible into " +
                                        std::to_string(groups) + " groups (norm_num_groups)");
  }
  ResnetBlock2DOptions o;
  o.in_channels = in_channels;
  o.out_channels = out_channels;
  o.temb_channels = std::nullopt;
  o.groups = groups;
  o.eps = eps;
  o.non_linearity = act_fn;
  return ResnetBlock2D(o);
}

}  // namespace

UNetMidBlock2DImpl::UNetMidBlock2DImpl(int64_t channels, int64_t groups, double eps, const std::string& act_fn,
                                       bool with_attention, int64_t attention_head_dim, int64_t num_layers)
    : add_attention(with_attention) {
  if (attention_head_dim <= 0 || channels % attention_head_dim != 0) {
    throw_input_error("bad_config", "VAE mid block: " + std::to_string(channels) +
                                        " channels are not a multiple of the head size " +
                                        std::to_string(attention_head_dim));
  }
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets = register_module("resnets", torch::nn::ModuleList());
  resnets->push_back(resnet(channels, channels, groups, eps, act_fn));
  for (int64_t i = 0; i < num_layers; ++i) {
    if (add_attention) {
      AttentionOptions a;
      a.query_dim = channels;
      a.heads = channels / attention_head_dim;
      a.dim_head = attention_head_dim;
      a.eps = eps;
      a.norm_num_groups = groups;
      a.residual_connection = true;
      a.bias = true;
      a.upcast_softmax = true;
      attentions->push_back(Attention(a));
    }
    resnets->push_back(resnet(channels, channels, groups, eps, act_fn));
  }
}

at::Tensor UNetMidBlock2DImpl::forward(const at::Tensor& x) {
  auto h = resnets->at<ResnetBlock2DImpl>(0).forward(x);
  for (size_t i = 1; i < resnets->size(); ++i) {
    if (add_attention) h = attentions->at<AttentionImpl>(i - 1).forward(h);
    h = resnets->at<ResnetBlock2DImpl>(i).forward(h);
  }
  return h;
}

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                                               int64_t groups, double eps, const std::string& act_fn,
                                               bool add_downsample, int64_t downsample_padding) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnets->push_back(resnet(i == 0 ? in_channels : out_channels, out_channels, groups, eps, act_fn));
  }
  if (add_downsample) {
    Downsample2DOptions d;
    d.channels = out_channels;
    d.use_conv = true;
    d.out_channels = out_channels;
    d.padding = downsample_padding;
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    downsamplers->push_back(Downsample2D(d));
  }
}

at::Tensor DownEncoderBlock2DImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) h = resnets->at<ResnetBlock2DImpl>(i).forward(h);
  if (downsamplers) h = downsamplers->at<Downsample2DImpl>(0).forward(h);
  return h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                                           int64_t groups, double eps, const std::string& act_fn, bool add_upsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnets->push_back(resnet(i == 0 ? in_channels : out_channels, out_channels, groups, eps, act_fn));
  }
  if (add_upsample) {
    Upsample2DOptions u;
    u.channels = out_channels;
    u.use_conv = true;
    u.out_channels = out_channels;
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsamplers->push_back(Upsample2D(u));
  }
}

at::Tensor UpDecoderBlock2DImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) h = resnets->at<ResnetBlock2DImpl>(i).forward(h);
  if (upsamplers) h = upsamplers->at<Upsample2DImpl>(0).forward(h);
  return h;
}

}  // namespace a2a::vae
