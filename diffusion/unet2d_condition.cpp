#include "diffusion/unet2d_condition.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "base/error.h"
#include "weights/config_reader.h"

namespace a2a {

namespace {

using nlohmann::json;

[[noreturn]] void bad_unet_field(const ConfigReader& c, const std::string& key, const std::string& expected,
                                 const json& value) {
  throw_input_error("bad_config", c.source() + ": '" + key + "' must be " + expected + ", not " + describe_json(value));
}

// int | [int, ...] (non-empty); the key must be present.
std::vector<int64_t> unet_int_or_list(const ConfigReader& c, const std::string& key) {
  const json& v = c.json().at(key);
  if (!v.is_array()) return {c.require<int64_t>(key)};
  if (v.empty()) bad_unet_field(c, key, "an integer or a non-empty list of integers", v);
  return c.require<std::vector<int64_t>>(key);
}

// Absent or null keeps `out`.
void read_unet_int_or_list(const ConfigReader& c, const std::string& key, std::vector<int64_t>& out) {
  if (c.contains(key) && !c.is_null(key)) out = unet_int_or_list(c, key);
}

// int | [int | [int]] -> per block, per layer.
std::vector<std::vector<int64_t>> unet_nested_int_or_list(const ConfigReader& c, const std::string& key) {
  const json& v = c.json().at(key);
  if (!v.is_array()) return {{c.require<int64_t>(key)}};
  if (v.empty()) bad_unet_field(c, key, "an integer or a list of integers / lists of integers", v);
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string item_key = key + "[" + std::to_string(i) + "]";
    out.push_back(unet_int_or_list(ConfigReader(json{{item_key, v[i]}}, c.source()), item_key));
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string canonical_down_block_type(const std::string& type) {
  return type.rfind("UNetRes", 0) == 0 ? type.substr(7) : type;
}

template <typename T>
T per_block(const std::vector<T>& values, size_t i) {
  return values.size() == 1 ? values[0] : values.at(i);
}

bool is_activation(const std::string& name) {
  try {
    parse_diffusers_activation(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

UNet2DConditionOptions UNet2DConditionOptions::from_json(const nlohmann::json& c) {
  if (!c.is_object()) throw_input_error("bad_model_config", "UNet2DConditionModel config must be a JSON object");
  return from_config(ConfigReader(c, "UNet2DConditionModel config"));
}

// Absent or null keeps a field's default (get_or); null clears the optional fields (read).
UNet2DConditionOptions UNet2DConditionOptions::from_config(const ConfigReader& c) {
  const std::string class_name = c.get_or<std::string>("_class_name", "UNet2DConditionModel");
  if (class_name != "UNet2DConditionModel") {
    throw_input_error("bad_model_config",
                      c.source() + " describes a \"" + class_name + "\", not a UNet2DConditionModel");
  }
  UNet2DConditionOptions o;
  if (c.contains("sample_size") && c.json().at("sample_size").is_array()) {
    // (height, width) sample sizes are informational only; keep the height.
    const auto sizes = c.require<std::vector<int64_t>>("sample_size");
    if (sizes.empty()) bad_unet_field(c, "sample_size", "an integer or a non-empty list", c.json().at("sample_size"));
    o.sample_size = sizes[0];
  } else {
    c.read("sample_size", o.sample_size);
  }
  o.in_channels = c.get_or("in_channels", o.in_channels);
  o.out_channels = c.get_or("out_channels", o.out_channels);
  o.center_input_sample = c.get_or("center_input_sample", o.center_input_sample);
  o.flip_sin_to_cos = c.get_or("flip_sin_to_cos", o.flip_sin_to_cos);
  o.freq_shift = c.get_or("freq_shift", o.freq_shift);
  o.down_block_types = c.get_or("down_block_types", o.down_block_types);
  c.read("mid_block_type", o.mid_block_type);
  o.up_block_types = c.get_or("up_block_types", o.up_block_types);
  if (c.contains("only_cross_attention") && !c.is_null("only_cross_attention")) {
    const json& v = c.json().at("only_cross_attention");
    if (v.is_array() && v.empty()) bad_unet_field(c, "only_cross_attention", "a boolean or a list of booleans", v);
    o.only_cross_attention = v.is_array() ? c.require<std::vector<bool>>("only_cross_attention")
                                          : std::vector<bool>{c.require<bool>("only_cross_attention")};
  }
  read_unet_int_or_list(c, "block_out_channels", o.block_out_channels);
  read_unet_int_or_list(c, "layers_per_block", o.layers_per_block);
  o.downsample_padding = c.get_or("downsample_padding", o.downsample_padding);
  o.mid_block_scale_factor = c.get_or("mid_block_scale_factor", o.mid_block_scale_factor);
  o.dropout = c.get_or("dropout", o.dropout);
  o.act_fn = c.get_or("act_fn", o.act_fn);
  c.read("norm_num_groups", o.norm_num_groups);
  o.norm_eps = c.get_or("norm_eps", o.norm_eps);
  read_unet_int_or_list(c, "cross_attention_dim", o.cross_attention_dim);
  if (c.contains("transformer_layers_per_block") && !c.is_null("transformer_layers_per_block"))
    o.transformer_layers_per_block = unet_nested_int_or_list(c, "transformer_layers_per_block");
  if (c.contains("reverse_transformer_layers_per_block") && !c.is_null("reverse_transformer_layers_per_block"))
    o.reverse_transformer_layers_per_block = unet_nested_int_or_list(c, "reverse_transformer_layers_per_block");
  c.read("encoder_hid_dim", o.encoder_hid_dim);
  c.read("encoder_hid_dim_type", o.encoder_hid_dim_type);
  read_unet_int_or_list(c, "attention_head_dim", o.attention_head_dim);
  if (c.contains("num_attention_heads") && !c.is_null("num_attention_heads"))
    o.num_attention_heads = unet_int_or_list(c, "num_attention_heads");
  o.dual_cross_attention = c.get_or("dual_cross_attention", o.dual_cross_attention);
  o.use_linear_projection = c.get_or("use_linear_projection", o.use_linear_projection);
  c.read("class_embed_type", o.class_embed_type);
  c.read("addition_embed_type", o.addition_embed_type);
  c.read("addition_time_embed_dim", o.addition_time_embed_dim);
  c.read("num_class_embeds", o.num_class_embeds);
  o.upcast_attention = c.get_or("upcast_attention", o.upcast_attention);
  o.resnet_time_scale_shift = c.get_or("resnet_time_scale_shift", o.resnet_time_scale_shift);
  o.resnet_skip_time_act = c.get_or("resnet_skip_time_act", o.resnet_skip_time_act);
  o.resnet_out_scale_factor = c.get_or("resnet_out_scale_factor", o.resnet_out_scale_factor);
  o.time_embedding_type = c.get_or("time_embedding_type", o.time_embedding_type);
  c.read("time_embedding_dim", o.time_embedding_dim);
  c.read("time_embedding_act_fn", o.time_embedding_act_fn);
  c.read("timestep_post_act", o.timestep_post_act);
  c.read("time_cond_proj_dim", o.time_cond_proj_dim);
  o.conv_in_kernel = c.get_or("conv_in_kernel", o.conv_in_kernel);
  o.conv_out_kernel = c.get_or("conv_out_kernel", o.conv_out_kernel);
  c.read("projection_class_embeddings_input_dim", o.projection_class_embeddings_input_dim);
  o.attention_type = c.get_or("attention_type", o.attention_type);
  o.class_embeddings_concat = c.get_or("class_embeddings_concat", o.class_embeddings_concat);
  c.read("mid_block_only_cross_attention", o.mid_block_only_cross_attention);
  c.read("cross_attention_norm", o.cross_attention_norm);
  o.addition_embed_type_num_heads = c.get_or("addition_embed_type_num_heads", o.addition_embed_type_num_heads);
  return o;
}

UNet2DConditionOptions UNet2DConditionOptions::from_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw_input_error("file_not_found", "cannot open UNet config " + path);
  return from_config(ConfigReader::from_file(path));
}

std::vector<std::string> UNet2DConditionOptions::problems() const {
  std::vector<std::string> p;
  const size_t n = down_block_types.size();
  if (n == 0) p.push_back("down_block_types is empty");
  if (up_block_types.size() != n) {
    p.push_back("down_block_types has " + std::to_string(n) + " entries but up_block_types has " +
                std::to_string(up_block_types.size()));
  }
  if (block_out_channels.size() != n) {
    p.push_back("block_out_channels has " + std::to_string(block_out_channels.size()) + " entries for " +
                std::to_string(n) + " down blocks");
  }
  auto check_len = [&](const char* name, size_t len) {
    if (len != 1 && len != n) {
      p.push_back(std::string(name) + " has " + std::to_string(len) + " entries for " + std::to_string(n) +
                  " down blocks");
    }
  };
  check_len("only_cross_attention", only_cross_attention.size());
  check_len("layers_per_block", layers_per_block.size());
  check_len("cross_attention_dim", cross_attention_dim.size());
  check_len("attention_head_dim", attention_head_dim.size());
  check_len("transformer_layers_per_block", transformer_layers_per_block.size());
  if (reverse_transformer_layers_per_block) {
    check_len("reverse_transformer_layers_per_block", reverse_transformer_layers_per_block->size());
  } else {
    for (const auto& layers : transformer_layers_per_block) {
      if (layers.size() > 1) {
        p.push_back(
            "transformer_layers_per_block lists per-layer counts, which needs "
            "reverse_transformer_layers_per_block (asymmetrical UNet)");
        break;
      }
    }
  }
  if (num_attention_heads) {
    p.push_back(
        "num_attention_heads must be null: diffusers 0.29.2 rejects it (the head count is "
        "attention_head_dim in this class)");
  }
  for (const auto& type : down_block_types) {
    const std::string t = canonical_down_block_type(type);
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D") {
      p.push_back("down block type '" + type + "' is not supported (CrossAttnDownBlock2D, DownBlock2D)");
    }
  }
  for (const auto& type : up_block_types) {
    if (type != "CrossAttnUpBlock2D" && type != "UpBlock2D") {
      p.push_back("up block type '" + type + "' is not supported (CrossAttnUpBlock2D, UpBlock2D)");
    }
  }
  if (mid_block_type && *mid_block_type != "UNetMidBlock2DCrossAttn" && *mid_block_type != "UNetMidBlock2D") {
    p.push_back("mid_block_type '" + *mid_block_type +
                "' is not supported (UNetMidBlock2DCrossAttn, UNetMidBlock2D or null)");
  }
  if (dual_cross_attention) p.push_back("dual_cross_attention = true is not supported");
  if (attention_type != "default") {
    p.push_back("attention_type '" + attention_type + "' (GLIGEN) is not supported, only 'default'");
  }
  if (addition_embed_type) {
    p.push_back("addition_embed_type '" + *addition_embed_type +
                "' (SDXL / Kandinsky added conditions) is not supported, only null");
  }
  if (encoder_hid_dim_type && *encoder_hid_dim_type != "text_proj") {
    p.push_back("encoder_hid_dim_type '" + *encoder_hid_dim_type + "' is not supported (null or text_proj)");
  }
  if (encoder_hid_dim_type && !encoder_hid_dim) {
    p.push_back("encoder_hid_dim_type is set but encoder_hid_dim is null");
  }
  if (encoder_hid_dim && cross_attention_dim.size() != 1) {
    p.push_back("encoder_hid_dim needs a single cross_attention_dim");
  }
  if (time_embedding_type != "positional") {
    p.push_back("time_embedding_type '" + time_embedding_type + "' is not supported, only 'positional'");
  }
  if (class_embed_type) {
    const std::string& t = *class_embed_type;
    if (t != "timestep" && t != "identity" && t != "projection" && t != "simple_projection") {
      p.push_back("class_embed_type '" + t +
                  "' is not supported (null, timestep, identity, projection, simple_projection)");
    }
    if ((t == "projection" || t == "simple_projection") && !projection_class_embeddings_input_dim) {
      p.push_back("class_embed_type '" + t + "' requires projection_class_embeddings_input_dim");
    }
  }
  if (resnet_time_scale_shift != "default" && resnet_time_scale_shift != "scale_shift") {
    p.push_back("resnet_time_scale_shift '" + resnet_time_scale_shift + "' is not supported (default, scale_shift)");
  }
  if (!norm_num_groups) p.push_back("norm_num_groups = null is not supported by the resnet blocks");
  if (!is_activation(act_fn)) p.push_back("act_fn '" + act_fn + "' is not supported");
  if (time_embedding_act_fn && !is_activation(*time_embedding_act_fn)) {
    p.push_back("time_embedding_act_fn '" + *time_embedding_act_fn + "' is not supported");
  }
  if (timestep_post_act && !is_activation(*timestep_post_act)) {
    p.push_back("timestep_post_act '" + *timestep_post_act + "' is not supported");
  }
  if (conv_in_kernel % 2 == 0 || conv_out_kernel % 2 == 0) p.push_back("conv_in_kernel/conv_out_kernel must be odd");
  if (block_out_channels.size() == n && attention_head_dim.size() >= 1 &&
      (attention_head_dim.size() == 1 || attention_head_dim.size() == n)) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t heads = per_block(attention_head_dim, i);
      if (heads <= 0 || block_out_channels[i] % heads != 0) {
        p.push_back("block " + std::to_string(i) + ": width " + std::to_string(block_out_channels[i]) +
                    " is not divisible by attention_head_dim " + std::to_string(heads) +
                    " (the number of heads in this class)");
      }
    }
  }
  return p;
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConditionOptions& options)
    : options_(options), act_(DiffusersActivation::SiLU) {
  const auto problems = options.problems();
  if (!problems.empty()) {
    throw_input_error("unsupported_model_config",
                      "cannot build UNet2DConditionModel:\n  - " + join(problems, "\n  - "));
  }
  act_ = parse_diffusers_activation(options.act_fn);
  if (options.time_embedding_act_fn) time_embed_act_ = parse_diffusers_activation(*options.time_embedding_act_fn);

  const auto& channels = options.block_out_channels;
  const size_t n = channels.size();
  const int64_t groups = *options.norm_num_groups;

  conv_in = register_module(
      "conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels, channels[0], options.conv_in_kernel)
                                       .padding((options.conv_in_kernel - 1) / 2)));

  const int64_t time_embed_dim = options.time_embedding_dim.value_or(channels[0] * 4);
  const int64_t timestep_input_dim = channels[0];
  time_proj = register_module("time_proj", Timesteps(channels[0], options.flip_sin_to_cos, options.freq_shift));
  TimestepEmbeddingOptions te;
  te.in_channels = timestep_input_dim;
  te.time_embed_dim = time_embed_dim;
  te.act_fn = options.act_fn;
  te.post_act_fn = options.timestep_post_act;
  te.cond_proj_dim = options.time_cond_proj_dim;
  time_embedding = register_module("time_embedding", TimestepEmbedding(te));

  if (options.encoder_hid_dim) {
    encoder_hid_proj = register_module("encoder_hid_proj",
                                       torch::nn::Linear(*options.encoder_hid_dim, options.cross_attention_dim[0]));
  }

  if (!options.class_embed_type && options.num_class_embeds) {
    class_embedding_table =
        register_module("class_embedding", torch::nn::Embedding(*options.num_class_embeds, time_embed_dim));
  } else if (options.class_embed_type == "timestep") {
    TimestepEmbeddingOptions ce;
    ce.in_channels = timestep_input_dim;
    ce.time_embed_dim = time_embed_dim;
    ce.act_fn = options.act_fn;
    class_embedding_mlp = register_module("class_embedding", TimestepEmbedding(ce));
  } else if (options.class_embed_type == "projection") {
    TimestepEmbeddingOptions ce;
    ce.in_channels = *options.projection_class_embeddings_input_dim;
    ce.time_embed_dim = time_embed_dim;
    class_embedding_mlp = register_module("class_embedding", TimestepEmbedding(ce));
  } else if (options.class_embed_type == "simple_projection") {
    class_embedding_linear = register_module(
        "class_embedding", torch::nn::Linear(*options.projection_class_embeddings_input_dim, time_embed_dim));
  }

  blocks_time_embed_dim_ = options.class_embeddings_concat ? time_embed_dim * 2 : time_embed_dim;

  UNet2DBlockOptions common;
  common.temb_channels = blocks_time_embed_dim_;
  common.dropout = options.dropout;
  common.resnet_eps = options.norm_eps;
  common.resnet_act_fn = options.act_fn;
  common.resnet_groups = groups;
  common.resnet_time_scale_shift = options.resnet_time_scale_shift;
  common.downsample_padding = options.downsample_padding;
  common.use_linear_projection = options.use_linear_projection;
  common.upcast_attention = options.upcast_attention;

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t output_channel = channels[0];
  for (size_t i = 0; i < n; ++i) {
    UNet2DBlockOptions b = common;
    b.in_channels = output_channel;
    output_channel = channels[i];
    b.out_channels = output_channel;
    b.num_layers = per_block(options.layers_per_block, i);
    b.transformer_layers_per_block = per_block(options.transformer_layers_per_block, i);
    b.add_downsample = i + 1 != n;
    b.cross_attention_dim = per_block(options.cross_attention_dim, i);
    b.num_attention_heads = per_block(options.attention_head_dim, i);
    b.only_cross_attention = per_block(options.only_cross_attention, i);
    std::shared_ptr<UNetDownBlockImpl> block;
    if (canonical_down_block_type(options.down_block_types[i]) == "CrossAttnDownBlock2D") {
      block = std::make_shared<CrossAttnDownBlock2DImpl>(b);
    } else {
      block = std::make_shared<DownBlock2DImpl>(b);
    }
    down_block_list_.push_back(block);
    down_blocks->push_back(block);
  }

  if (options.mid_block_type) {
    UNet2DBlockOptions m = common;
    m.in_channels = channels.back();
    m.output_scale_factor = options.mid_block_scale_factor;
    m.transformer_layers_per_block = per_block(options.transformer_layers_per_block, n - 1);
    m.num_attention_heads = per_block(options.attention_head_dim, n - 1);
    m.cross_attention_dim = per_block(options.cross_attention_dim, n - 1);
    if (*options.mid_block_type == "UNetMidBlock2DCrossAttn") {
      m.num_layers = 1;
      mid_block = std::make_shared<UNetMidBlock2DCrossAttnImpl>(m);
    } else {
      m.num_layers = 0;
      m.add_attention = false;
      mid_block = std::make_shared<UNetMidBlock2DImpl>(m);
    }
    register_module("mid_block", mid_block);
  }

  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  output_channel = channels[n - 1];
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;  // the matching down block
    const bool is_final = i + 1 == n;
    UNet2DBlockOptions b = common;
    b.prev_output_channel = output_channel;
    output_channel = channels[r];
    b.out_channels = output_channel;
    b.in_channels = channels[r == 0 ? 0 : r - 1];
    b.num_layers = per_block(options.layers_per_block, r) + 1;
    b.transformer_layers_per_block = options.reverse_transformer_layers_per_block
                                         ? per_block(*options.reverse_transformer_layers_per_block, i)
                                         : per_block(options.transformer_layers_per_block, r);
    b.add_upsample = !is_final;
    if (!is_final) ++num_upsamplers_;
    b.cross_attention_dim = per_block(options.cross_attention_dim, r);
    b.num_attention_heads = per_block(options.attention_head_dim, r);
    b.only_cross_attention = per_block(options.only_cross_attention, r);
    std::shared_ptr<UNetUpBlockImpl> block;
    if (options.up_block_types[i] == "CrossAttnUpBlock2D") {
      block = std::make_shared<CrossAttnUpBlock2DImpl>(b);
    } else {
      block = std::make_shared<UpBlock2DImpl>(b);
    }
    up_block_list_.push_back(block);
    up_blocks->push_back(block);
  }

  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels[0]).eps(options.norm_eps)));
  conv_out = register_module(
      "conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels[0], options.out_channels, options.conv_out_kernel)
                                        .padding((options.conv_out_kernel - 1) / 2)));
  eval();
}

at::Tensor UNet2DConditionModelImpl::class_embed(const at::Tensor& sample, const at::Tensor& class_labels) {
  const bool has_class_embedding =
      class_embedding_table || class_embedding_mlp || class_embedding_linear || options_.class_embed_type == "identity";
  if (!has_class_embedding) return {};
  if (!class_labels.defined()) {
    throw_input_error("missing_input", "UNet2DConditionModel: class_labels are required (class_embed_type " +
                                           options_.class_embed_type.value_or("null") + ")");
  }
  if (class_labels.size(0) != sample.size(0)) {
    throw_input_error("bad_shape", "UNet2DConditionModel: class_labels batch " + std::to_string(class_labels.size(0)) +
                                       " differs from the sample batch " + std::to_string(sample.size(0)));
  }
  at::Tensor emb;
  if (class_embedding_table) {
    emb = class_embedding_table(class_labels.to(at::kLong));
  } else if (options_.class_embed_type == "timestep") {
    emb = class_embedding_mlp(time_proj(class_labels).to(sample.scalar_type()));
  } else if (class_embedding_mlp) {
    emb = class_embedding_mlp(class_labels.to(sample.scalar_type()));
  } else if (class_embedding_linear) {
    if (class_labels.dim() != 2 || class_labels.size(1) != class_embedding_linear->options.in_features()) {
      throw_input_error("bad_shape", "UNet2DConditionModel: class_labels must be [B, " +
                                         std::to_string(class_embedding_linear->options.in_features()) + "], got " +
                                         c10::str(class_labels.sizes()));
    }
    emb = class_embedding_linear(class_labels.to(sample.scalar_type()));
  } else {
    emb = class_labels;
  }
  return emb.to(sample.scalar_type());
}

at::Tensor UNet2DConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                             const at::Tensor& encoder_hidden_states, const at::Tensor& class_labels,
                                             const at::Tensor& timestep_cond,
                                             const at::Tensor& encoder_attention_mask) {
  if (sample.dim() != 4 || sample.size(1) != options_.in_channels) {
    throw_input_error("bad_shape", "UNet2DConditionModel: sample must be [B, " + std::to_string(options_.in_channels) +
                                       ", H, W], got " + c10::str(sample.sizes()));
  }
  const int64_t batch = sample.size(0);
  if (!timestep.defined() || timestep.dim() > 1 ||
      (timestep.dim() == 1 && timestep.size(0) != 1 && timestep.size(0) != batch)) {
    throw_input_error("bad_shape", "UNet2DConditionModel: timestep must be a scalar, [1] or [" + std::to_string(batch) +
                                       "] tensor, got " + (timestep.defined() ? c10::str(timestep.sizes()) : "none"));
  }
  if (encoder_hidden_states.defined() && (encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(0) != batch)) {
    throw_input_error("bad_shape", "UNet2DConditionModel: encoder_hidden_states must be [" + std::to_string(batch) +
                                       ", S, D], got " + c10::str(encoder_hidden_states.sizes()));
  }

  const int64_t up_factor = int64_t{1} << num_upsamplers_;
  const bool forward_upsample_size = sample.size(2) % up_factor != 0 || sample.size(3) % up_factor != 0;

  UNetConditioning cond;
  if (encoder_attention_mask.defined()) {
    cond.encoder_attention_mask = ((1 - encoder_attention_mask.to(sample.scalar_type())) * -10000.0).unsqueeze(1);
  }

  at::Tensor x = options_.center_input_sample ? 2 * sample - 1.0 : sample;

  at::Tensor timesteps = timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep;
  timesteps = timesteps.to(sample.device()).expand({batch});
  at::Tensor emb = time_embedding(time_proj(timesteps).to(sample.scalar_type()), timestep_cond);
  at::Tensor class_emb = class_embed(sample, class_labels);
  if (class_emb.defined()) emb = options_.class_embeddings_concat ? at::cat({emb, class_emb}, -1) : emb + class_emb;
  if (time_embed_act_) emb = apply_activation(*time_embed_act_, emb);
  cond.temb = emb;

  cond.encoder_hidden_states = encoder_hidden_states;
  if (encoder_hid_proj && encoder_hidden_states.defined())
    cond.encoder_hidden_states = encoder_hid_proj(encoder_hidden_states);

  x = conv_in(x);
  std::vector<at::Tensor> skips{x};
  for (auto& block : down_block_list_) {
    auto result = block->forward(x, cond);
    x = result.first;
    skips.insert(skips.end(), result.second.begin(), result.second.end());
  }
  if (mid_block) x = mid_block->forward(x, cond);

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

  x = apply_activation(act_, conv_norm_out(x));
  return conv_out(x);
}

at::Tensor UNet2DConditionModelImpl::forward_scalar_timestep(const at::Tensor& sample, double timestep,
                                                             const at::Tensor& encoder_hidden_states,
                                                             const at::Tensor& class_labels) {
  at::Tensor t = at::full({1}, timestep, sample.options().dtype(at::kDouble));
  return forward(sample, t, encoder_hidden_states, class_labels);
}

}  // namespace a2a
