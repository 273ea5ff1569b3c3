#include "diffusion/unet3d_condition.h"

#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "weights/component_resolver.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"

namespace a2a {

namespace {

using nlohmann::json;

std::string unet3d_join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += "\n  - " + item;
  return out;
}

bool unet3d_is_activation(const std::string& name) {
  try {
    parse_diffusers_activation(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

bool unet3d_is_cross_attn(const std::string& type) {
  return type == "CrossAttnDownBlock3D" || type == "CrossAttnUpBlock3D";
}

void unet3d_block_type_problems(const UNet3DConditionOptions& o, std::vector<std::string>& p) {
  for (const auto& type : o.down_block_types) {
    if (type != "CrossAttnDownBlock3D" && type != "DownBlock3D") {
      p.push_back("down block type '" + type + "' is not supported (CrossAttnDownBlock3D, DownBlock3D)");
    }
  }
  for (const auto& type : o.up_block_types) {
    if (type != "CrossAttnUpBlock3D" && type != "UpBlock3D") {
      p.push_back("up block type '" + type + "' is not supported (CrossAttnUpBlock3D, UpBlock3D)");
    }
  }
}

// Every cross-attention block, and the mid block, splits its width into heads of attention_head_dim.
void unet3d_width_problems(const UNet3DConditionOptions& o, std::vector<std::string>& p) {
  const size_t n = o.block_out_channels.size();
  if (o.attention_head_dim <= 0) {
    p.push_back("attention_head_dim must be positive");
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const bool attends = (i < o.down_block_types.size() && unet3d_is_cross_attn(o.down_block_types[i])) ||
                         (i < o.up_block_types.size() && unet3d_is_cross_attn(o.up_block_types[n - 1 - i])) ||
                         i + 1 == n;
    if (attends && o.block_out_channels[i] % o.attention_head_dim != 0) {
      p.push_back("block " + std::to_string(i) + ": width " + std::to_string(o.block_out_channels[i]) +
                  " is not divisible by attention_head_dim " + std::to_string(o.attention_head_dim));
    }
  }
}

}  // namespace

UNet3DConditionOptions UNet3DConditionOptions::from_config(const ConfigReader& c) {
  if (!c.json().is_object())
    throw_input_error("bad_config", c.source() + ": a UNet3DConditionModel config must be a JSON object");
  const std::string class_name = c.get_or<std::string>("_class_name", "UNet3DConditionModel");
  if (class_name != "UNet3DConditionModel") {
    throw_input_error("bad_config", c.source() + " describes a \"" + class_name + "\", not a UNet3DConditionModel");
  }
  UNet3DConditionOptions o;
  c.read("sample_size", o.sample_size);
  o.in_channels = c.get_or("in_channels", o.in_channels);
  o.out_channels = c.get_or("out_channels", o.out_channels);
  o.down_block_types = c.get_or("down_block_types", o.down_block_types);
  o.up_block_types = c.get_or("up_block_types", o.up_block_types);
  o.block_out_channels = c.get_or("block_out_channels", o.block_out_channels);
  o.layers_per_block = c.get_or("layers_per_block", o.layers_per_block);
  o.downsample_padding = c.get_or("downsample_padding", o.downsample_padding);
  o.mid_block_scale_factor = c.get_or("mid_block_scale_factor", o.mid_block_scale_factor);
  o.act_fn = c.get_or("act_fn", o.act_fn);
  c.read("norm_num_groups", o.norm_num_groups);
  o.norm_eps = c.get_or("norm_eps", o.norm_eps);
  c.read("cross_attention_dim", o.cross_attention_dim);
  if (c.contains("attention_head_dim") && c.json().at("attention_head_dim").is_array()) {
    throw_input_error("unsupported_model_config",
                      c.source() +
                          ": attention_head_dim must be an integer: transformer_in uses it as the width of "
                          "its 8 heads (diffusers fails on a list too)");
  }
  o.attention_head_dim = c.get_or("attention_head_dim", o.attention_head_dim);
  if (c.contains("num_attention_heads") && !c.is_null("num_attention_heads")) {
    o.num_attention_heads = c.json().at("num_attention_heads").is_array()
                                ? c.require<std::vector<int64_t>>("num_attention_heads")
                                : std::vector<int64_t>{c.require<int64_t>("num_attention_heads")};
  }
  c.read("time_cond_proj_dim", o.time_cond_proj_dim);
  return o;
}

UNet3DConditionOptions UNet3DConditionOptions::from_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw_input_error("file_not_found", "cannot open UNet3D config " + path);
  return from_config(ConfigReader::from_file(path));
}

std::vector<std::string> UNet3DConditionOptions::problems() const {
  std::vector<std::string> p;
  const size_t n = down_block_types.size();
  if (num_attention_heads) {
    p.push_back(
        "num_attention_heads must be null: diffusers 0.29.2 refuses it (attention_head_dim is the "
        "head setting of this model)");
  }
  if (n == 0) p.push_back("down_block_types is empty");
  if (up_block_types.size() != n) p.push_back("down_block_types and up_block_types differ in length");
  if (block_out_channels.size() != n) p.push_back("block_out_channels and down_block_types differ in length");
  unet3d_block_type_problems(*this, p);
  if (!cross_attention_dim) p.push_back("cross_attention_dim must be set: the mid block always cross-attends");
  if (layers_per_block < 1) p.push_back("layers_per_block must be at least 1");
  if (!norm_num_groups) p.push_back("norm_num_groups = null is not supported by the resnet blocks");
  if (!unet3d_is_activation(act_fn)) p.push_back("act_fn '" + act_fn + "' is not supported");
  for (int64_t c : block_out_channels) {
    if (c <= 0 || (norm_num_groups && *norm_num_groups > 0 && c % *norm_num_groups != 0)) {
      p.push_back("block width " + std::to_string(c) + " is not divisible by norm_num_groups");
    }
  }
  if (block_out_channels.size() == n && up_block_types.size() == n) unet3d_width_problems(*this, p);
  return p;
}

UNet3DConditionModelImpl::UNet3DConditionModelImpl(const UNet3DConditionOptions& options) : options_(options) {
  const auto problems = options.problems();
  if (!problems.empty()) {
    throw_input_error("unsupported_model_config", "cannot build UNet3DConditionModel:" + unet3d_join(problems));
  }
  const auto& channels = options.block_out_channels;
  const size_t n = channels.size();
  const int64_t groups = *options.norm_num_groups;

  conv_in = register_module(
      "conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels, channels[0], 3).padding(1)));
  const int64_t time_embed_dim = channels[0] * 4;
  time_proj = register_module("time_proj", Timesteps(channels[0], true, 0));
  TimestepEmbeddingOptions te;
  te.in_channels = channels[0];
  te.time_embed_dim = time_embed_dim;
  te.act_fn = options.act_fn;
  te.cond_proj_dim = options.time_cond_proj_dim;
  time_embedding = register_module("time_embedding", TimestepEmbedding(te));

  TransformerTemporalModelOptions tin;
  tin.num_attention_heads = 8;
  tin.attention_head_dim = options.attention_head_dim;
  tin.in_channels = channels[0];
  tin.norm_num_groups = groups;
  transformer_in = register_module("transformer_in", TransformerTemporalModel(tin));

  // get_down_block / get_up_block defaults for the 3-D types: linear projections, no dropout.
  UNet2DBlockOptions common;
  common.temb_channels = time_embed_dim;
  common.resnet_eps = options.norm_eps;
  common.resnet_act_fn = options.act_fn;
  common.resnet_groups = groups;
  common.cross_attention_dim = options.cross_attention_dim;
  common.num_attention_heads = options.attention_head_dim;
  common.downsample_padding = options.downsample_padding;
  common.use_linear_projection = true;

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t output_channel = channels[0];
  for (size_t i = 0; i < n; ++i) {
    UNet2DBlockOptions b = common;
    b.in_channels = output_channel;
    output_channel = channels[i];
    b.out_channels = output_channel;
    b.num_layers = options.layers_per_block;
    b.add_downsample = i + 1 != n;
    std::shared_ptr<UNet3DDownBlockImpl> block;
    if (options.down_block_types[i] == "CrossAttnDownBlock3D") {
      block = std::make_shared<CrossAttnDownBlock3DImpl>(b);
    } else {
      block = std::make_shared<DownBlock3DImpl>(b);
    }
    down_block_list_.push_back(block);
    down_blocks->push_back(block);
  }

  UNet2DBlockOptions m = common;
  m.in_channels = channels.back();
  m.out_channels = channels.back();
  m.output_scale_factor = options.mid_block_scale_factor;
  m.num_layers = 1;
  mid_block = register_module("mid_block", UNetMidBlock3DCrossAttn(m));

  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  output_channel = channels[n - 1];
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;
    const bool is_final = i + 1 == n;
    UNet2DBlockOptions b = common;
    b.prev_output_channel = output_channel;
    output_channel = channels[r];
    b.out_channels = output_channel;
    b.in_channels = channels[r == 0 ? 0 : r - 1];
    b.num_layers = options.layers_per_block + 1;
    b.add_upsample = !is_final;
    if (!is_final) ++num_upsamplers_;
    std::shared_ptr<UNet3DUpBlockImpl> block;
    if (options.up_block_types[i] == "CrossAttnUpBlock3D") {
      block = std::make_shared<CrossAttnUpBlock3DImpl>(b);
    } else {
      block = std::make_shared<UpBlock3DImpl>(b);
    }
    up_block_list_.push_back(block);
    up_blocks->push_back(block);
  }

  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels[0]).eps(options.norm_eps)));
  conv_out = register_module(
      "conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels[0], options.out_channels, 3).padding(1)));
  eval();
}

void UNet3DConditionModelImpl::check_inputs(const at::Tensor& sample, const at::Tensor& timestep,
                                            const at::Tensor& encoder_hidden_states) const {
  if (!sample.defined() || sample.dim() != 5 || sample.size(1) != options_.in_channels) {
    throw_input_error("bad_shape", "UNet3DConditionModel: sample must be [B, " + std::to_string(options_.in_channels) +
                                       ", F, H, W], got " + (sample.defined() ? c10::str(sample.sizes()) : "none"));
  }
  const int64_t batch = sample.size(0);
  if (!timestep.defined() || timestep.dim() > 1 ||
      (timestep.dim() == 1 && timestep.size(0) != 1 && timestep.size(0) != batch)) {
    throw_input_error("bad_shape", "UNet3DConditionModel: timestep must be a scalar, [1] or [" + std::to_string(batch) +
                                       "] tensor, got " + (timestep.defined() ? c10::str(timestep.sizes()) : "none"));
  }
  if (!encoder_hidden_states.defined() || encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(0) != batch ||
      encoder_hidden_states.size(2) != *options_.cross_attention_dim) {
    throw_input_error("bad_shape",
                      "UNet3DConditionModel: encoder_hidden_states must be [" + std::to_string(batch) + ", S, " +
                          std::to_string(*options_.cross_attention_dim) + "], got " +
                          (encoder_hidden_states.defined() ? c10::str(encoder_hidden_states.sizes()) : "none"));
  }
}

// Everything between transformer_in and conv_norm_out, on frames folded into the batch.
at::Tensor UNet3DConditionModelImpl::run_blocks(at::Tensor x, const UNet3DConditioning& cond) {
  const int64_t up_factor = int64_t{1} << num_upsamplers_;
  const bool forward_upsample_size = x.size(2) % up_factor != 0 || x.size(3) % up_factor != 0;
  std::vector<at::Tensor> skips{x};
  for (auto& block : down_block_list_) {
    auto result = block->forward(x, cond);
    x = result.first;
    skips.insert(skips.end(), result.second.begin(), result.second.end());
  }
  x = mid_block(x, cond);
  for (size_t i = 0; i < up_block_list_.size(); ++i) {
    auto& block = up_block_list_[i];
    const size_t count = block->num_resnets();
    std::vector<at::Tensor> res(skips.end() - count, skips.end());
    skips.resize(skips.size() - count);
    std::vector<int64_t> upsample_size;
    if (i + 1 != up_block_list_.size() && forward_upsample_size) {
      upsample_size = {skips.back().size(2), skips.back().size(3)};
    }
    x = block->forward(x, res, cond, upsample_size);
  }
  return x;
}

at::Tensor UNet3DConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                             const at::Tensor& encoder_hidden_states, const at::Tensor& timestep_cond) {
  check_inputs(sample, timestep, encoder_hidden_states);
  const int64_t batch = sample.size(0), num_frames = sample.size(2);
  at::Tensor timesteps = timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep;
  timesteps = timesteps.to(sample.device()).expand({batch});
  at::Tensor emb = time_embedding(time_proj(timesteps).to(sample.scalar_type()), timestep_cond);

  UNet3DConditioning cond;
  cond.num_frames = num_frames;
  cond.temb = emb.repeat_interleave(num_frames, 0);
  cond.encoder_hidden_states = encoder_hidden_states.repeat_interleave(num_frames, 0);

  at::Tensor x = sample.permute({0, 2, 1, 3, 4}).reshape({batch * num_frames, -1, sample.size(3), sample.size(4)});
  x = transformer_in(conv_in(x), num_frames);
  x = run_blocks(x, cond);
  x = conv_out(torch::silu(conv_norm_out(x)));
  return x.reshape({batch, num_frames, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}

UNet3DConditionModel load_unet3d_condition(const std::string& path, const std::string& component,
                                           const std::string& device, at::ScalarType dtype,
                                           const std::string& variant) {
  ComponentRequest request;
  request.component = component;
  request.variant = variant;
  request.who = "UNet3DConditionModel";
  request.hint =
      "give a diffusers text-to-video pipeline folder with unet/ or a UNet3DConditionModel folder (config.json + "
      "diffusion_pytorch_model.safetensors or its sharded index)";
  const ResolvedComponent files = resolve_component(path, request);
  UNet3DConditionModel model(UNet3DConditionOptions::from_config(files.config));
  LoadOptions options;
  options.source = files.weights;
  options.device = device;
  options.dtype = dtype;
  load_weights(*model, files.weights, options, variant);
  model->eval();
  return model;
}

}  // namespace a2a
