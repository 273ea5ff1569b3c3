#include "diffusion/unet_blocks.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

namespace {

int64_t transformer_layers(const UNet2DBlockOptions& o, int64_t layer) {
  const auto& per_layer = o.transformer_layers_per_block;
  if (per_layer.size() == 1) return per_layer[0];
  if (layer >= static_cast<int64_t>(per_layer.size())) {
    throw_input_error("unsupported_model_config", "transformer_layers_per_block lists " +
                                                      std::to_string(per_layer.size()) + " values for a block of " +
                                                      std::to_string(o.num_layers) + " layers");
  }
  return per_layer[layer];
}

Transformer2DModel cross_attention_transformer(const UNet2DBlockOptions& o, int64_t channels, int64_t layer,
                                               bool only_cross_attention) {
  if (o.num_attention_heads <= 0 || channels % o.num_attention_heads != 0) {
    throw_input_error("unsupported_model_config",
                      "block width " + std::to_string(channels) +
                          " is not divisible by its number of attention heads " +
                          std::to_string(o.num_attention_heads) +
                          " (config.attention_head_dim is the head count in UNet2DConditionModel)");
  }
  Transformer2DModelOptions t;
  t.num_attention_heads = o.num_attention_heads;
  t.attention_head_dim = channels / o.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = transformer_layers(o, layer);
  t.cross_attention_dim = o.cross_attention_dim;
  t.norm_num_groups = o.resnet_groups;
  t.use_linear_projection = o.use_linear_projection;
  t.only_cross_attention = only_cross_attention;
  t.upcast_attention = o.upcast_attention;
  t.dropout = o.dropout;
  return Transformer2DModel(t);
}

}  // namespace

ResnetBlock2DOptions resnet_options(const UNet2DBlockOptions& o, int64_t in_channels, int64_t out_channels) {
  ResnetBlock2DOptions r;
  r.in_channels = in_channels;
  r.out_channels = out_channels;
  r.temb_channels = o.temb_channels;
  r.groups = o.resnet_groups;
  r.eps = o.resnet_eps;
  r.dropout = o.dropout;
  r.non_linearity = o.resnet_act_fn;
  r.time_embedding_norm = o.resnet_time_scale_shift;
  r.output_scale_factor = o.output_scale_factor;
  return r;
}

Downsample2D make_downsampler(const UNet2DBlockOptions& o) {
  Downsample2DOptions d;
  d.channels = o.out_channels;
  d.use_conv = true;
  d.out_channels = o.out_channels;
  d.padding = o.downsample_padding;
  return Downsample2D(d);
}

Upsample2D make_upsampler(const UNet2DBlockOptions& o) {
  Upsample2DOptions u;
  u.channels = o.out_channels;
  u.use_conv = true;
  u.out_channels = o.out_channels;
  return Upsample2D(u);
}

int64_t up_resnet_in_channels(const UNet2DBlockOptions& o, int64_t i) {
  const int64_t res_skip = (i == o.num_layers - 1) ? o.in_channels : o.out_channels;
  const int64_t resnet_in = (i == 0) ? o.prev_output_channel : o.out_channels;
  return resnet_in + res_skip;
}

void check_skip_count(const std::vector<at::Tensor>& res, size_t expected, const char* block) {
  if (res.size() != expected) {
    throw_input_error("bad_input", std::string(block) + ": expected " + std::to_string(expected) +
                                       " skip states, got " + std::to_string(res.size()));
  }
}

DownBlock2DImpl::DownBlock2DImpl(const UNet2DBlockOptions& options) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(
        resnet_options(options, i == 0 ? options.in_channels : options.out_channels, options.out_channels));
    resnets->push_back(resnet_list_.back());
  }
  if (options.add_downsample) {
    downsampler_ = make_downsampler(options);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler_));
  }
}

std::pair<at::Tensor, std::vector<at::Tensor>> DownBlock2DImpl::forward(const at::Tensor& hidden_states,
                                                                        const UNetConditioning& cond) {
  std::vector<at::Tensor> outputs;
  at::Tensor h = hidden_states;
  for (auto& resnet : resnet_list_) {
    h = resnet(h, cond.temb);
    outputs.push_back(h);
  }
  if (downsampler_) {
    h = downsampler_(h);
    outputs.push_back(h);
  }
  return {h, outputs};
}

CrossAttnDownBlock2DImpl::CrossAttnDownBlock2DImpl(const UNet2DBlockOptions& options) {
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(
        resnet_options(options, i == 0 ? options.in_channels : options.out_channels, options.out_channels));
    resnets->push_back(resnet_list_.back());
    attention_list_.push_back(
        cross_attention_transformer(options, options.out_channels, i, options.only_cross_attention));
    attentions->push_back(attention_list_.back());
  }
  if (options.add_downsample) {
    downsampler_ = make_downsampler(options);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(downsampler_));
  }
}

std::pair<at::Tensor, std::vector<at::Tensor>> CrossAttnDownBlock2DImpl::forward(const at::Tensor& hidden_states,
                                                                                 const UNetConditioning& cond) {
  std::vector<at::Tensor> outputs;
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = resnet_list_[i](h, cond.temb);
    h = attention_list_[i](h, cond.encoder_hidden_states, cond.attention_mask, cond.encoder_attention_mask);
    outputs.push_back(h);
  }
  if (downsampler_) {
    h = downsampler_(h);
    outputs.push_back(h);
  }
  return {h, outputs};
}

UNetMidBlock2DImpl::UNetMidBlock2DImpl(const UNet2DBlockOptions& options) {
  const int64_t channels = options.in_channels;
  auto resnet = [&] { return ResnetBlock2D(resnet_options(options, channels, channels)); };
  std::optional<int64_t> attn_groups = options.attn_groups;
  if (!attn_groups && options.resnet_time_scale_shift == "default") attn_groups = options.resnet_groups;
  const int64_t head_dim = options.attention_head_dim.value_or(channels);

  resnet_list_.push_back(resnet());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    if (options.add_attention) {
      AttentionOptions a;
      a.query_dim = channels;
      a.heads = channels / head_dim;
      a.dim_head = head_dim;
      a.rescale_output_factor = options.output_scale_factor;
      a.eps = options.resnet_eps;
      a.norm_num_groups = attn_groups;
      a.residual_connection = true;
      a.bias = true;
      a.upcast_softmax = true;
      attention_list_.emplace_back(a);
    }
    resnet_list_.push_back(resnet());
  }
  if (options.add_attention) {
    attentions = register_module("attentions", torch::nn::ModuleList());
    for (auto& a : attention_list_) attentions->push_back(a);
  }
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (auto& r : resnet_list_) resnets->push_back(r);
}

at::Tensor UNetMidBlock2DImpl::forward(const at::Tensor& hidden_states, const UNetConditioning& cond) {
  at::Tensor h = resnet_list_[0](hidden_states, cond.temb);
  for (size_t i = 1; i < resnet_list_.size(); ++i) {
    if (!attention_list_.empty()) h = attention_list_[i - 1](h);
    h = resnet_list_[i](h, cond.temb);
  }
  return h;
}

UNetMidBlock2DCrossAttnImpl::UNetMidBlock2DCrossAttnImpl(const UNet2DBlockOptions& options) {
  const int64_t in = options.in_channels;
  const int64_t out = options.out_channels > 0 ? options.out_channels : in;
  resnet_list_.emplace_back(resnet_options(options, in, out));
  for (int64_t i = 0; i < options.num_layers; ++i) {
    attention_list_.push_back(cross_attention_transformer(options, out, i, /*only_cross_attention=*/false));
    resnet_list_.emplace_back(resnet_options(options, out, out));
  }
  attentions = register_module("attentions", torch::nn::ModuleList());
  for (auto& a : attention_list_) attentions->push_back(a);
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (auto& r : resnet_list_) resnets->push_back(r);
}

at::Tensor UNetMidBlock2DCrossAttnImpl::forward(const at::Tensor& hidden_states, const UNetConditioning& cond) {
  at::Tensor h = resnet_list_[0](hidden_states, cond.temb);
  for (size_t i = 0; i < attention_list_.size(); ++i) {
    h = attention_list_[i](h, cond.encoder_hidden_states, cond.attention_mask, cond.encoder_attention_mask);
    h = resnet_list_[i + 1](h, cond.temb);
  }
  return h;
}

UpBlock2DImpl::UpBlock2DImpl(const UNet2DBlockOptions& options) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(resnet_options(options, up_resnet_in_channels(options, i), options.out_channels));
    resnets->push_back(resnet_list_.back());
  }
  if (options.add_upsample) {
    upsampler_ = make_upsampler(options);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler_));
  }
}

at::Tensor UpBlock2DImpl::forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                                  const UNetConditioning& cond, const std::vector<int64_t>& upsample_size) {
  check_skip_count(res_hidden_states, resnet_list_.size(), "UpBlock2D");
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = at::cat({h, res_hidden_states[res_hidden_states.size() - 1 - i]}, 1);
    h = resnet_list_[i](h, cond.temb);
  }
  if (upsampler_) h = upsampler_(h, upsample_size);
  return h;
}

CrossAttnUpBlock2DImpl::CrossAttnUpBlock2DImpl(const UNet2DBlockOptions& options) {
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    resnet_list_.emplace_back(resnet_options(options, up_resnet_in_channels(options, i), options.out_channels));
    resnets->push_back(resnet_list_.back());
    attention_list_.push_back(
        cross_attention_transformer(options, options.out_channels, i, options.only_cross_attention));
    attentions->push_back(attention_list_.back());
  }
  if (options.add_upsample) {
    upsampler_ = make_upsampler(options);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(upsampler_));
  }
}

at::Tensor CrossAttnUpBlock2DImpl::forward(const at::Tensor& hidden_states,
                                           const std::vector<at::Tensor>& res_hidden_states,
                                           const UNetConditioning& cond, const std::vector<int64_t>& upsample_size) {
  check_skip_count(res_hidden_states, resnet_list_.size(), "CrossAttnUpBlock2D");
  at::Tensor h = hidden_states;
  for (size_t i = 0; i < resnet_list_.size(); ++i) {
    h = at::cat({h, res_hidden_states[res_hidden_states.size() - 1 - i]}, 1);
    h = resnet_list_[i](h, cond.temb);
    h = attention_list_[i](h, cond.encoder_hidden_states, cond.attention_mask, cond.encoder_attention_mask);
  }
  if (upsampler_) h = upsampler_(h, upsample_size);
  return h;
}

}  // namespace a2a
