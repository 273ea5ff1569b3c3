#include "diffusion/wan_transformer_3d.h"

#include <torch/torch.h>

#include "base/error.h"
#include "nn/dtype.h"
#include "weights/component_resolver.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"

namespace a2a {

namespace {

// The qk_norm names diffusers' Attention knows; only rms_norm_across_heads is implemented here.
bool wan_known_qk_norm(const std::string& name) {
  for (const char* known :
       {"layer_norm", "fp32_layer_norm", "layer_norm_across_heads", "rms_norm", "rms_norm_across_heads", "l2"}) {
    if (name == known) return true;
  }
  return false;
}

void wan_check_positive(std::vector<WanTransformer3DOptions::Problem>& out, const char* key, int64_t value,
                        bool zero_allowed = false) {
  if (value > 0 || (zero_allowed && value == 0)) return;
  out.push_back({"bad_config", std::string(key) + " must be " + (zero_allowed ? "non-negative" : "positive") +
                                   ", not " + std::to_string(value)});
}

AttentionOptions wan_attention_options(const WanTransformer3DOptions& o) {
  AttentionOptions a;
  a.query_dim = o.inner_dim();
  a.heads = o.num_attention_heads;
  a.dim_head = o.attention_head_dim;
  a.bias = true;
  a.out_bias = true;
  a.eps = o.eps;
  a.qk_norm = o.qk_norm;
  return a;
}

// _keep_in_fp32_modules matches any component of a dotted tensor name.
bool wan_keeps_float32(const std::string& name) {
  size_t begin = 0;
  while (begin <= name.size()) {
    const size_t end = std::min(name.find('.', begin), name.size());
    const std::string part = name.substr(begin, end - begin);
    if (part == "time_embedder" || part == "scale_shift_table" || part == "norm1" || part == "norm2" || part == "norm3")
      return true;
    begin = end + 1;
  }
  return false;
}

}  // namespace

WanTransformer3DOptions WanTransformer3DOptions::from_config(const ConfigReader& c) {
  const std::string class_name = c.get_or<std::string>("_class_name", "WanTransformer3DModel");
  if (class_name != "WanTransformer3DModel") {
    throw_input_error("bad_config", c.source() + " describes a \"" + class_name + "\", not a WanTransformer3DModel");
  }
  WanTransformer3DOptions o;
  c.read("patch_size", o.patch_size);
  c.read("num_attention_heads", o.num_attention_heads);
  c.read("attention_head_dim", o.attention_head_dim);
  c.read("in_channels", o.in_channels);
  c.read("out_channels", o.out_channels);
  c.read("text_dim", o.text_dim);
  c.read("freq_dim", o.freq_dim);
  c.read("ffn_dim", o.ffn_dim);
  c.read("num_layers", o.num_layers);
  c.read("cross_attn_norm", o.cross_attn_norm);
  c.read("qk_norm", o.qk_norm);
  c.read("eps", o.eps);
  c.read("image_dim", o.image_dim);
  c.read("added_kv_proj_dim", o.added_kv_proj_dim);
  c.read("rope_max_seq_len", o.rope_max_seq_len);
  return o;
}

WanTransformer3DOptions WanTransformer3DOptions::from_file(const std::string& path) {
  return from_config(ConfigReader::from_file(path));
}

std::vector<WanTransformer3DOptions::Problem> WanTransformer3DOptions::problems() const {
  std::vector<Problem> p;
  if (patch_size.size() != 3) {
    p.push_back({"bad_config", "patch_size must list 3 values (t, h, w), not " + std::to_string(patch_size.size())});
  }
  for (const int64_t s : patch_size) {
    if (s <= 0) p.push_back({"bad_config", "patch_size entries must be positive, not " + std::to_string(s)});
  }
  wan_check_positive(p, "num_attention_heads", num_attention_heads);
  wan_check_positive(p, "in_channels", in_channels);
  wan_check_positive(p, "out_channels", out_channels.value_or(0), /*zero_allowed=*/true);
  wan_check_positive(p, "text_dim", text_dim);
  wan_check_positive(p, "freq_dim", freq_dim);
  wan_check_positive(p, "ffn_dim", ffn_dim);
  wan_check_positive(p, "num_layers", num_layers, /*zero_allowed=*/true);
  wan_check_positive(p, "rope_max_seq_len", rope_max_seq_len);
  if (attention_head_dim < 6 || attention_head_dim % 2 != 0) {
    p.push_back({"bad_config", "attention_head_dim " + std::to_string(attention_head_dim) +
                                   " cannot be split into the frame, height and width rotary parts (it must be "
                                   "even and at least 6)"});
  }
  if (qk_norm && !wan_known_qk_norm(*qk_norm)) {
    p.push_back({"bad_config", "unknown qk_norm '" + *qk_norm + "'"});
  } else if (qk_norm && *qk_norm != "rms_norm_across_heads") {
    p.push_back({"unsupported_model_config",
                 "qk_norm '" + *qk_norm + "' is not supported (only rms_norm_across_heads or null)"});
  }
  if (image_dim) {
    p.push_back({"unsupported_model_config",
                 "image_dim " + std::to_string(*image_dim) +
                     " (the image-to-video image embedder) is not supported: only text-to-video models"});
  }
  if (added_kv_proj_dim) {
    p.push_back({"unsupported_model_config",
                 "added_kv_proj_dim " + std::to_string(*added_kv_proj_dim) +
                     " (the image-to-video add_k_proj / add_v_proj) is not supported: only text-to-video models"});
  }
  return p;
}

WanTimeTextImageEmbeddingImpl::WanTimeTextImageEmbeddingImpl(int64_t dim, int64_t time_freq_dim, int64_t time_proj_dim,
                                                             int64_t text_embed_dim) {
  timesteps_proj = register_module("timesteps_proj", Timesteps(time_freq_dim, /*flip_sin_to_cos=*/true, /*shift=*/0.0));
  TimestepEmbeddingOptions t;
  t.in_channels = time_freq_dim;
  t.time_embed_dim = dim;
  time_embedder = register_module("time_embedder", TimestepEmbedding(t));
  time_proj = register_module("time_proj", torch::nn::Linear(dim, time_proj_dim));
  text_embedder = register_module("text_embedder", PixArtAlphaTextProjection(text_embed_dim, dim));
}

WanConditionEmbeddings WanTimeTextImageEmbeddingImpl::forward(const at::Tensor& timestep,
                                                              const at::Tensor& encoder_hidden_states) {
  const at::Tensor frequencies = timesteps_proj(timestep).to(time_embedder->linear_1->weight.scalar_type());
  WanConditionEmbeddings out;
  out.temb = time_embedder(frequencies).to(encoder_hidden_states.scalar_type());
  out.timestep_proj = time_proj(at::silu(out.temb));
  out.encoder_hidden_states = text_embedder(encoder_hidden_states);
  return out;
}

WanTransformerBlockImpl::WanTransformerBlockImpl(const WanTransformer3DOptions& options) {
  const int64_t dim = options.inner_dim();
  norm1 = register_module("norm1", FP32LayerNorm(dim, options.eps, /*elementwise_affine=*/false));
  attn1 = register_module("attn1", Attention(wan_attention_options(options)));
  attn2 = register_module("attn2", Attention(wan_attention_options(options)));
  if (options.cross_attn_norm) {
    norm2 = register_module("norm2", FP32LayerNorm(dim, options.eps, /*elementwise_affine=*/true));
  }
  FeedForwardOptions f;
  f.dim = dim;
  f.inner_dim = options.ffn_dim;
  f.activation_fn = "gelu-approximate";
  ffn = register_module("ffn", FeedForward(f));
  norm3 = register_module("norm3", FP32LayerNorm(dim, options.eps, /*elementwise_affine=*/false));
  scale_shift_table = register_parameter("scale_shift_table", torch::randn({1, 6, dim}) / std::sqrt(double(dim)));
}

at::Tensor WanTransformerBlockImpl::forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states,
                                            const at::Tensor& timestep_proj, const at::Tensor& rotary_emb) {
  // shift, scale, gate of the self-attention, then of the feed-forward; each [B, 1, dim] in float32.
  const auto m = (scale_shift_table + timestep_proj.to(at::kFloat)).chunk(6, 1);
  const auto dtype = hidden_states.scalar_type();
  const AttentionHeadRotation rotate = [&](const at::Tensor& heads) { return apply_wan_rotary_emb(heads, rotary_emb); };

  at::Tensor h = hidden_states;
  at::Tensor normed = (norm1(h.to(at::kFloat)) * (1 + m[1]) + m[0]).to(dtype);
  h = (h.to(at::kFloat) + attn1->forward(normed, at::Tensor(), at::Tensor(), rotate) * m[2]).to(dtype);

  normed = norm2 ? norm2(h.to(at::kFloat)).to(dtype) : h;
  h = h + attn2(normed, encoder_hidden_states);

  normed = (norm3(h.to(at::kFloat)) * (1 + m[4]) + m[3]).to(dtype);
  return (h.to(at::kFloat) + ffn(normed).to(at::kFloat) * m[5]).to(dtype);
}

WanTransformer3DModelImpl::WanTransformer3DModelImpl(const WanTransformer3DOptions& options) : options_(options) {
  const auto problems = options.problems();
  if (!problems.empty()) {
    std::string code = "unsupported_model_config", message = "WanTransformer3DModel config:";
    for (const auto& problem : problems) {
      if (problem.code == "bad_config") code = "bad_config";
      message += "\n  " + problem.message;
    }
    throw_input_error(code, message);
  }
  patch_ = {options.patch_size[0], options.patch_size[1], options.patch_size[2]};
  const int64_t dim = options.inner_dim();
  rope = register_module("rope", WanRotaryPosEmbed(options.attention_head_dim, patch_, options.rope_max_seq_len));
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv3d(
          torch::nn::Conv3dOptions(options.in_channels, dim, at::IntArrayRef(patch_)).stride(at::IntArrayRef(patch_))));
  condition_embedder = register_module("condition_embedder",
                                       WanTimeTextImageEmbedding(dim, options.freq_dim, 6 * dim, options.text_dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    block_list_.emplace_back(options);
    blocks->push_back(block_list_.back());
  }
  norm_out = register_module("norm_out", FP32LayerNorm(dim, options.eps, /*elementwise_affine=*/false));
  proj_out = register_module(
      "proj_out", torch::nn::Linear(dim, options.resolved_out_channels() * patch_[0] * patch_[1] * patch_[2]));
  scale_shift_table = register_parameter("scale_shift_table", torch::randn({1, 2, dim}) / std::sqrt(double(dim)));
}

void WanTransformer3DModelImpl::check_inputs(const at::Tensor& hidden_states, const at::Tensor& timestep,
                                             const at::Tensor& encoder_hidden_states) const {
  const std::string who = "WanTransformer3DModel: ";
  if (!hidden_states.defined() || hidden_states.dim() != 5 || hidden_states.size(1) != options_.in_channels) {
    throw_input_error("bad_shape", who + "hidden_states must be [B, " + std::to_string(options_.in_channels) +
                                       ", F, H, W], got " +
                                       (hidden_states.defined() ? c10::str(hidden_states.sizes()) : "none"));
  }
  for (size_t axis = 0; axis < 3; ++axis) {
    if (hidden_states.size(2 + axis) % patch_[axis] != 0 || hidden_states.size(2 + axis) == 0) {
      throw_input_error("bad_shape", who + "frames, height and width " + c10::str(hidden_states.sizes().slice(2)) +
                                         " must be positive multiples of patch_size " +
                                         c10::str(at::IntArrayRef(patch_)));
    }
  }
  const int64_t batch = hidden_states.size(0);
  if (!timestep.defined() || timestep.dim() > 1 ||
      (timestep.dim() == 1 && timestep.size(0) != 1 && timestep.size(0) != batch)) {
    throw_input_error("bad_shape", who + "timestep must be a scalar, [1] or [" + std::to_string(batch) +
                                       "] tensor, got " + (timestep.defined() ? c10::str(timestep.sizes()) : "none"));
  }
  if (!encoder_hidden_states.defined() || encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(0) != batch ||
      encoder_hidden_states.size(2) != options_.text_dim) {
    throw_input_error("bad_shape",
                      who + "encoder_hidden_states must be [" + std::to_string(batch) + ", L, " +
                          std::to_string(options_.text_dim) + "], got " +
                          (encoder_hidden_states.defined() ? c10::str(encoder_hidden_states.sizes()) : "none"));
  }
}

at::Tensor WanTransformer3DModelImpl::forward(const at::Tensor& hidden_states, const at::Tensor& timestep,
                                              const at::Tensor& encoder_hidden_states) {
  check_inputs(hidden_states, timestep, encoder_hidden_states);
  const auto dtype = patch_embedding->weight.scalar_type();
  const at::Tensor x = hidden_states.to(dtype);
  const at::Tensor timesteps =
      (timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep).to(x.device()).expand({x.size(0)});

  const at::Tensor rotary_emb = rope(x);
  at::Tensor tokens = patch_embedding(x).flatten(2).transpose(1, 2);
  const WanConditionEmbeddings cond = condition_embedder(timesteps, encoder_hidden_states.to(dtype));
  const at::Tensor timestep_proj = cond.timestep_proj.unflatten(1, {6, -1});
  for (auto& block : block_list_) tokens = block(tokens, cond.encoder_hidden_states, timestep_proj, rotary_emb);

  const auto shift_scale = (scale_shift_table + cond.temb.unsqueeze(1)).chunk(2, 1);
  tokens = (norm_out(tokens.to(at::kFloat)) * (1 + shift_scale[1]) + shift_scale[0]).to(tokens.scalar_type());
  return unpatchify(proj_out(tokens), x.sizes());
}

// [B, F'·H'·W', p_t·p_h·p_w·C] -> [B, C, F'·p_t, H'·p_h, W'·p_w].
at::Tensor WanTransformer3DModelImpl::unpatchify(const at::Tensor& tokens, at::IntArrayRef input_sizes) const {
  const int64_t f = input_sizes[2] / patch_[0], h = input_sizes[3] / patch_[1], w = input_sizes[4] / patch_[2];
  return tokens.reshape({input_sizes[0], f, h, w, patch_[0], patch_[1], patch_[2], -1})
      .permute({0, 7, 1, 4, 2, 5, 3, 6})
      .flatten(6, 7)
      .flatten(4, 5)
      .flatten(2, 3);
}

void cast_wan_transformer_3d(WanTransformer3DModelImpl& model, at::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    at::Tensor& t = item.value();
    const at::ScalarType target = wan_keeps_float32(item.key()) ? at::kFloat : dtype;
    if (t.is_floating_point() && t.scalar_type() != target) t.set_data(t.to(target));
  }
}

WanTransformer3DModel load_wan_transformer_3d(const std::string& path, const std::string& component,
                                              const std::string& device, at::ScalarType dtype,
                                              const std::string& variant) {
  ComponentRequest request;
  request.component = component;
  request.variant = variant;
  request.who = "WanTransformer3DModel";
  request.hint =
      "give a diffusers Wan pipeline folder with transformer/ or a WanTransformer3DModel folder (config.json + "
      "diffusion_pytorch_model.safetensors or its sharded index)";
  const ResolvedComponent files = resolve_component(path, request);
  WanTransformer3DModel model(WanTransformer3DOptions::from_config(files.config));
  // Cast first: each checkpoint tensor is then copied straight into its final dtype.
  cast_wan_transformer_3d(*model, dtype);
  LoadOptions options;
  options.source = files.weights;
  options.device = device;
  load_weights(*model, files.weights, options, variant);
  model->eval();
  return model;
}

}  // namespace a2a
