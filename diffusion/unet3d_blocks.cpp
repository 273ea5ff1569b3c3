#include "diffusion/unet3d_blocks.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

namespace {

// The reference's TemporalConvLayer dropout; identity at inference.
constexpr double kUNet3DTemporalDropout = 0.1;

torch::nn::Sequential unet3d_temporal_stage(int64_t groups, int64_t in_dim, int64_t out_dim, double dropout,
                                            bool with_dropout) {
  torch::nn::Sequential stage;
  stage->push_back(torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, in_dim)));
  stage->push_back(torch::nn::SiLU());
  if (with_dropout) stage->push_back(torch::nn::Dropout(dropout));
  stage->push_back(
      torch::nn::Conv3d(torch::nn::Conv3dOptions(in_dim, out_dim, {3, 1, 1}).padding(torch::IntArrayRef{1, 0, 0})));
  return stage;
}

int64_t unet3d_head_count(const UNet2DBlockOptions& o, int64_t channels) {
  if (o.num_attention_heads <= 0 || channels % o.num_attention_heads != 0) {
    throw_input_error("unsupported_model_config", "block width " + std::to_string(channels) +
                                                      " is not divisible by attention_head_dim " +
                                                      std::to_string(o.num_attention_heads));
  }
  return channels / o.num_attention_heads;
}

Transformer2DModel unet3d_spatial_transformer(const UNet2DBlockOptions& o, int64_t channels) {
  Transformer2DModelOptions t;
  t.num_attention_heads = unet3d_head_count(o, channels);
  t.attention_head_dim = o.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = 1;
  t.cross_attention_dim = o.cross_attention_dim;
  t.norm_num_groups = o.resnet_groups;
  t.use_linear_projection = o.use_linear_projection;
  t.only_cross_attention = o.only_cross_attention;
  t.upcast_attention = o.upcast_attention;
  return Transformer2DModel(t);
}

TransformerTemporalModel unet3d_temporal_transformer(const UNet2DBlockOptions& o, int64_t channels) {
  TransformerTemporalModelOptions t;
  t.num_attention_heads = unet3d_head_count(o, channels);
  t.attention_head_dim = o.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = 1;
  t.cross_attention_dim = o.cross_attention_dim;
  t.norm_num_groups = o.resnet_groups;
  return TransformerTemporalModel(t);
}

TemporalConvLayer unet3d_temporal_conv(const UNet2DBlockOptions& o, int64_t channels) {
  return TemporalConvLayer(channels, channels, kUNet3DTemporalDropout, o.resnet_groups);
}

template <typename T>
void unet3d_register_all(torch::nn::ModuleList& list, const std::vector<T>& modules) {
  for (const auto& m : modules) list->push_back(m);
}

}  // namespace

TemporalConvLayerImpl::TemporalConvLayerImpl(int64_t in_dim, std::optional<int64_t> out_dim, double dropout,
                                             int64_t norm_num_groups) {
  const int64_t out = out_dim.value_or(in_dim);
  conv1 = register_module("conv1", unet3d_temporal_stage(norm_num_groups, in_dim, out, dropout, false));
  conv2 = register_module("conv2", unet3d_temporal_stage(norm_num_groups, out, in_dim, dropout, true));
  conv3 = register_module("conv3", unet3d_temporal_stage(norm_num_groups, out, in_dim, dropout, true));
  conv4 = register_module("conv4", unet3d_temporal_stage(norm_num_groups, out, in_dim, dropout, true));
  // The reference zero-initialises conv4's conv so that a fresh layer is the identity.
  torch::NoGradGuard no_grad;
  for (auto& p : conv4->ptr(conv4->size() - 1)->parameters()) p.zero_();
}

at::Tensor TemporalConvLayerImpl::forward(const at::Tensor& hidden_states, int64_t num_frames) {
  if (hidden_states.dim() != 4 || num_frames <= 0 || hidden_states.size(0) % num_frames != 0) {
    throw_input_error("bad_shape", "TemporalConvLayer: hidden_states must be [B*" + std::to_string(num_frames) +
                                       ", C, H, W], got " + c10::str(hidden_states.sizes()));
  }
  const auto sizes = hidden_states.sizes();
  at::Tensor identity = hidden_states.reshape({-1, num_frames, sizes[1], sizes[2], sizes[3]}).permute({0, 2, 1, 3, 4});
  at::Tensor h = conv4->forward(conv3->forward(conv2->forward(conv1->forward(identity))));
  h = identity + h;
  return h.permute({0, 2, 1, 3, 4}).reshape({-1, h.size(1), h.size(3), h.size(4)});
}

DownBlock3DImpl::DownBlock3DImpl(const UNet2DBlockOptions& options) {
  for (int64_t i = 0; i < options.num_layers; ++i) {
    const int64_t in = i == 0 ? options.in_channels : options.out_channels;
    resnet_list_.emplace_back(resnet_options(options, in, options.out_channels));
    temp_conv_list_.push_back(unet3d_temporal_conv(options, options.out_channels));
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  unet3d_register_all(resnets, resnet_list_);
  temp_convs = register_module("temp_convs", torch::nn::ModuleList());
  unet3d_register_all(temp_convs, temp_conv_list_);
  if (options.add_downsample) {
    downsampler_ = make_downsampler(options);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler_));
  }
}

std::pair<at::Tensor, std::vector<at::Tensor>> DownBlock3DImpl::forward(const at::Tensor& hidden_states,
                                                                        const UNet3DConditioning& cond) {
  std::vector<at::Tensor> outputs;
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = resnet_list_[i](h, cond.temb);
    h = temp_conv_list_[i](h, cond.num_frames);
    outputs.push_back(h);
  }
  if (downsampler_) {
    h = downsampler_(h);
    outputs.push_back(h);
  }
  return {h, outputs};
}

CrossAttnDownBlock3DImpl::CrossAttnDownBlock3DImpl(const UNet2DBlockOptions& options) {
  const int64_t out = options.out_channels;
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(resnet_options(options, i == 0 ? options.in_channels : out, out));
    temp_conv_list_.push_back(unet3d_temporal_conv(options, out));
    attention_list_.push_back(unet3d_spatial_transformer(options, out));
    temp_attention_list_.push_back(unet3d_temporal_transformer(options, out));
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  unet3d_register_all(resnets, resnet_list_);
  temp_convs = register_module("temp_convs", torch::nn::ModuleList());
  unet3d_register_all(temp_convs, temp_conv_list_);
  attentions = register_module("attentions", torch::nn::ModuleList());
  unet3d_register_all(attentions, attention_list_);
  temp_attentions = register_module("temp_attentions", torch::nn::ModuleList());
  unet3d_register_all(temp_attentions, temp_attention_list_);
  if (options.add_downsample) {
    downsampler_ = make_downsampler(options);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler_));
  }
}

std::pair<at::Tensor, std::vector<at::Tensor>> CrossAttnDownBlock3DImpl::forward(const at::Tensor& hidden_states,
                                                                                 const UNet3DConditioning& cond) {
  std::vector<at::Tensor> outputs;
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = resnet_list_[i](h, cond.temb);
    h = temp_conv_list_[i](h, cond.num_frames);
    h = attention_list_[i](h, cond.encoder_hidden_states);
    h = temp_attention_list_[i](h, cond.num_frames);
    outputs.push_back(h);
  }
  if (downsampler_) {
    h = downsampler_(h);
    outputs.push_back(h);
  }
  return {h, outputs};
}

UNetMidBlock3DCrossAttnImpl::UNetMidBlock3DCrossAttnImpl(const UNet2DBlockOptions& options) {
  const int64_t channels = options.in_channels;
  resnet_list_.emplace_back(resnet_options(options, channels, channels));
  temp_conv_list_.push_back(unet3d_temporal_conv(options, channels));
  for (int64_t i = 0; i < options.num_layers; ++i) {
    attention_list_.push_back(unet3d_spatial_transformer(options, channels));
    temp_attention_list_.push_back(unet3d_temporal_transformer(options, channels));
    resnet_list_.emplace_back(resnet_options(options, channels, channels));
    temp_conv_list_.push_back(unet3d_temporal_conv(options, channels));
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  unet3d_register_all(resnets, resnet_list_);
  temp_convs = register_module("temp_convs", torch::nn::ModuleList());
  unet3d_register_all(temp_convs, temp_conv_list_);
  attentions = register_module("attentions", torch::nn::ModuleList());
  unet3d_register_all(attentions, attention_list_);
  temp_attentions = register_module("temp_attentions", torch::nn::ModuleList());
  unet3d_register_all(temp_attentions, temp_attention_list_);
}

at::Tensor UNetMidBlock3DCrossAttnImpl::forward(const at::Tensor& hidden_states, const UNet3DConditioning& cond) {
  at::Tensor h = resnet_list_[0](hidden_states, cond.temb);
  h = temp_conv_list_[0](h, cond.num_frames);
  for (size_t i = 0; i < attention_list_.size(); ++i) {
    h = attention_list_[i](h, cond.encoder_hidden_states);
    h = temp_attention_list_[i](h, cond.num_frames);
    h = resnet_list_[i + 1](h, cond.temb);
    h = temp_conv_list_[i + 1](h, cond.num_frames);
  }
  return h;
}

UpBlock3DImpl::UpBlock3DImpl(const UNet2DBlockOptions& options) {
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(resnet_options(options, up_resnet_in_channels(options, i), options.out_channels));
    temp_conv_list_.push_back(unet3d_temporal_conv(options, options.out_channels));
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  unet3d_register_all(resnets, resnet_list_);
  temp_convs = register_module("temp_convs", torch::nn::ModuleList());
  unet3d_register_all(temp_convs, temp_conv_list_);
  if (options.add_upsample) {
    upsampler_ = make_upsampler(options);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler_));
  }
}

at::Tensor UpBlock3DImpl::forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                                  const UNet3DConditioning& cond, const std::vector<int64_t>& upsample_size) {
  check_skip_count(res_hidden_states, resnet_list_.size(), "UpBlock3D");
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = at::cat({h, res_hidden_states[res_hidden_states.size() - 1 - i]}, 1);
    h = resnet_list_[i](h, cond.temb);
    h = temp_conv_list_[i](h, cond.num_frames);
  }
  if (upsampler_) h = upsampler_(h, upsample_size);
  return h;
}

CrossAttnUpBlock3DImpl::CrossAttnUpBlock3DImpl(const UNet2DBlockOptions& options) {
  const int64_t out = options.out_channels;
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(resnet_options(options, up_resnet_in_channels(options, i), out));
    temp_conv_list_.push_back(unet3d_temporal_conv(options, out));
    attention_list_.push_back(unet3d_spatial_transformer(options, out));
    temp_attention_list_.push_back(unet3d_temporal_transformer(options, out));
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  unet3d_register_all(resnets, resnet_list_);
  temp_convs = register_module("temp_convs", torch::nn::ModuleList());
  unet3d_register_all(temp_convs, temp_conv_list_);
  attentions = register_module("attentions", torch::nn::ModuleList());
  unet3d_register_all(attentions, attention_list_);
  temp_attentions = register_module("temp_attentions", torch::nn::ModuleList());
  unet3d_register_all(temp_attentions, temp_attention_list_);
  if (options.add_upsample) {
    upsampler_ = make_upsampler(options);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler_));
  }
}

at::Tensor CrossAttnUpBlock3DImpl::forward(const at::Tensor& hidden_states,
                                           const std::vector<at::Tensor>& res_hidden_states,
                                           const UNet3DConditioning& cond, const std::vector<int64_t>& upsample_size) {
  check_skip_count(res_hidden_states, resnet_list_.size(), "CrossAttnUpBlock3D");
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = at::cat({h, res_hidden_states[res_hidden_states.size() - 1 - i]}, 1);
    h = resnet_list_[i](h, cond.temb);
    h = temp_conv_list_[i](h, cond.num_frames);
    h = attention_list_[i](h, cond.encoder_hidden_states);
    h = temp_attention_list_[i](h, cond.num_frames);
  }
  if (upsampler_) h = upsampler_(h, upsample_size);
  return h;
}

}  // namespace a2a
