#pragma once
// diffusers' UNet2DConditionModel (unets/unet_2d_condition.py, 0.29.2): Stable Diffusion 1.x/2.x and
// AudioLDM denoisers, named exactly like the diffusers state_dict (conv_in, time_embedding.linear_1,
// class_embedding, down_blocks.N..., mid_block..., up_blocks.N..., conv_norm_out, conv_out).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/embeddings.h"
#include "diffusion/unet_blocks.h"

namespace a2a {

class ConfigReader;

// Mirrors UNet2DConditionModel's config.json field for field; defaults are the constructor's.
// Fields that config.json allows as "int or list" are lists here: one value means "the same for every
// block". transformer_layers_per_block is per block, then per layer of the block (one value: every layer).
struct UNet2DConditionOptions {
  std::optional<int64_t> sample_size;
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "DownBlock2D"};
  std::optional<std::string> mid_block_type = std::string("UNetMidBlock2DCrossAttn");  // unset: no mid block
  std::vector<std::string> up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D"};
  std::vector<bool> only_cross_attention = {false};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  std::vector<int64_t> layers_per_block = {2};
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  double dropout = 0.0;
  std::string act_fn = "silu";
  std::optional<int64_t> norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::vector<int64_t> cross_attention_dim = {1280};
  std::vector<std::vector<int64_t>> transformer_layers_per_block = {{1}};
  std::optional<std::vector<std::vector<int64_t>>> reverse_transformer_layers_per_block;
  std::optional<int64_t> encoder_hid_dim;
  std::optional<std::string> encoder_hid_dim_type;
  // The number of attention heads per block, despite the name (diffusers keeps the historical name;
  // num_attention_heads must stay unset in 0.29.2).
  std::vector<int64_t> attention_head_dim = {8};
  std::optional<std::vector<int64_t>> num_attention_heads;
  bool dual_cross_attention = false;
  bool use_linear_projection = false;
  std::optional<std::string> class_embed_type;  // timestep | identity | projection | simple_projection
  std::optional<std::string> addition_embed_type;
  std::optional<int64_t> addition_time_embed_dim;
  std::optional<int64_t> num_class_embeds;
  bool upcast_attention = false;
  std::string resnet_time_scale_shift = "default";
  bool resnet_skip_time_act = false;     // only read by block types not supported here
  double resnet_out_scale_factor = 1.0;  // idem
  std::string time_embedding_type = "positional";
  std::optional<int64_t> time_embedding_dim;
  std::optional<std::string> time_embedding_act_fn;
  std::optional<std::string> timestep_post_act;
  std::optional<int64_t> time_cond_proj_dim;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  std::optional<int64_t> projection_class_embeddings_input_dim;
  std::string attention_type = "default";
  bool class_embeddings_concat = false;
  std::optional<bool> mid_block_only_cross_attention;  // only read by UNetMidBlock2DSimpleCrossAttn
  std::optional<std::string> cross_attention_norm;     // only read by the SimpleCrossAttn blocks
  int64_t addition_embed_type_num_heads = 64;

  // Reads a diffusers config.json; absent keys and null keep the defaults above (null clears the
  // optional fields). Malformed values throw a2a::Error (code "bad_config", naming the source and the
  // key); options this implementation does not support are reported when the model is built.
  static UNet2DConditionOptions from_json(const nlohmann::json& config);
  // The same from a reader whose errors name the file (not a from_json overload: a braced JSON
  // literal argument would be ambiguous between the two).
  static UNet2DConditionOptions from_config(const ConfigReader& config);
  static UNet2DConditionOptions from_file(const std::string& config_json_path);

  // Every problem with the configuration (inconsistent list lengths, unsupported block types or
  // embeddings), one sentence each; empty when the model can be built.
  std::vector<std::string> problems() const;
};

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  // Throws a2a::Error (code "unsupported_model_config") listing every problem of options.problems().
  explicit UNet2DConditionModelImpl(const UNet2DConditionOptions& options);

  // sample [B, in_channels, H, W]; timestep 0-d, [1] or [B] (integer or floating);
  // encoder_hidden_states [B, S, cross_attention_dim] or undefined (then every attn2 attends to its own
  // hidden states, as AudioLDM calls it); class_labels as class_embed_type needs ([B, D] for the
  // projections, [B] for timestep/num_class_embeds) or undefined; timestep_cond [B, time_cond_proj_dim]
  // or undefined. encoder_attention_mask [B, S] (1 keep, 0 discard) or undefined.
  // Returns the predicted sample [B, out_channels, H, W].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states = {},
                     const at::Tensor& class_labels = {}, const at::Tensor& timestep_cond = {},
                     const at::Tensor& encoder_attention_mask = {});
  // A Python-number timestep, as diffusers turns it into a tensor (float64 for floats). A separate name
  // keeps `unet(sample, t, context)` unambiguous.
  at::Tensor forward_scalar_timestep(const at::Tensor& sample, double timestep,
                                     const at::Tensor& encoder_hidden_states = {}, const at::Tensor& class_labels = {});

  const UNet2DConditionOptions& options() const { return options_; }
  // Width of the time embedding fed to every resnet (doubled by class_embeddings_concat).
  int64_t blocks_time_embed_dim() const { return blocks_time_embed_dim_; }

  torch::nn::Conv2d conv_in{nullptr};
  Timesteps time_proj{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::Linear encoder_hid_proj{nullptr};
  // class_embedding is one of these, depending on class_embed_type / num_class_embeds.
  torch::nn::Embedding class_embedding_table{nullptr};
  TimestepEmbedding class_embedding_mlp{nullptr};
  torch::nn::Linear class_embedding_linear{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  std::shared_ptr<UNetMidBlockImpl> mid_block;  // null without a mid block
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};

 private:
  at::Tensor class_embed(const at::Tensor& sample, const at::Tensor& class_labels);

  UNet2DConditionOptions options_;
  int64_t blocks_time_embed_dim_ = 0;
  int64_t num_upsamplers_ = 0;
  std::vector<std::shared_ptr<UNetDownBlockImpl>> down_block_list_;
  std::vector<std::shared_ptr<UNetUpBlockImpl>> up_block_list_;
  DiffusersActivation act_;
  std::optional<DiffusersActivation> time_embed_act_;
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace a2a
