#pragma once
// diffusers' UNet3DConditionModel (unets/unet_3d_condition.py, 0.29.2): the ModelScope text-to-video
// denoiser, named exactly like the diffusers state_dict (conv_in, time_embedding, transformer_in,
// down_blocks.N..., mid_block..., up_blocks.N..., conv_norm_out, conv_out).
#include <ATen/Tensor.h>
#include <ATen/core/ScalarType.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/embeddings.h"
#include "diffusion/transformer_temporal.h"
#include "diffusion/unet3d_blocks.h"

namespace a2a {

class ConfigReader;

// Mirrors UNet3DConditionModel's config.json; defaults are the constructor's.
struct UNet3DConditionOptions {
  std::optional<int64_t> sample_size;
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D",
                                               "DownBlock3D"};
  std::vector<std::string> up_block_types = {"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D",
                                             "CrossAttnUpBlock3D"};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  int64_t layers_per_block = 2;
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  std::string act_fn = "silu";
  std::optional<int64_t> norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::optional<int64_t> cross_attention_dim = 1024;
  // Per-head width of transformer_in (8 heads) and, despite the name, what the blocks take as their
  // num_attention_heads (the reference's naming issue): an integer, since transformer_in multiplies it.
  int64_t attention_head_dim = 64;
  // Refused when set, as diffusers 0.29.2 raises.
  std::optional<std::vector<int64_t>> num_attention_heads;
  std::optional<int64_t> time_cond_proj_dim;

  // Absent keys and null keep the defaults (null clears the optional fields); malformed values throw
  // a2a::Error "bad_config" naming the source and the key; a list attention_head_dim throws
  // "unsupported_model_config". Other unsupported options are reported when the model is built.
  static UNet3DConditionOptions from_config(const ConfigReader& config);
  static UNet3DConditionOptions from_file(const std::string& config_json_path);

  // Every problem with the configuration, one sentence each; empty when the model can be built.
  std::vector<std::string> problems() const;
};

class UNet3DConditionModelImpl : public torch::nn::Module {
 public:
  // Throws a2a::Error (code "unsupported_model_config") listing every problem of options.problems().
  explicit UNet3DConditionModelImpl(const UNet3DConditionOptions& options);

  // sample [B, in_channels, F, H, W]; timestep 0-d, [1] or [B]; encoder_hidden_states
  // [B, S, cross_attention_dim]; timestep_cond [B, time_cond_proj_dim] or undefined.
  // Returns the predicted sample [B, out_channels, F, H, W].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& timestep_cond = {});

  const UNet3DConditionOptions& options() const { return options_; }

  torch::nn::Conv2d conv_in{nullptr};
  Timesteps time_proj{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  TransformerTemporalModel transformer_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  UNetMidBlock3DCrossAttn mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};

 private:
  void check_inputs(const at::Tensor& sample, const at::Tensor& timestep,
                    const at::Tensor& encoder_hidden_states) const;
  at::Tensor run_blocks(at::Tensor x, const UNet3DConditioning& cond);

  UNet3DConditionOptions options_;
  int64_t num_upsamplers_ = 0;
  std::vector<std::shared_ptr<UNet3DDownBlockImpl>> down_block_list_;
  std::vector<std::shared_ptr<UNet3DUpBlockImpl>> up_block_list_;
};
TORCH_MODULE(UNet3DConditionModel);

// Builds the model from a diffusers folder (config.json + diffusion_pytorch_model.safetensors or its
// sharded index), or the `component` subfolder of a pipeline folder, resolved by resolve_component, and
// loads it strictly in `dtype` on `device`.
UNet3DConditionModel load_unet3d_condition(const std::string& path, const std::string& component = "unet",
                                           const std::string& device = "cpu", at::ScalarType dtype = at::kFloat,
                                           const std::string& variant = "");

}  // namespace a2a
