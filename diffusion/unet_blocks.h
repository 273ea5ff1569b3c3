#pragma once
// The 2-D UNet blocks of diffusers 0.29.2 (unets/unet_2d_blocks.py) that UNet2DConditionModel builds for
// Stable Diffusion and AudioLDM: DownBlock2D, CrossAttnDownBlock2D, UNetMidBlock2D,
// UNetMidBlock2DCrossAttn, UpBlock2D and CrossAttnUpBlock2D, named like the state_dict
// (attentions.N, resnets.N, downsamplers.0.conv, upsamplers.0.conv).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "diffusion/attention_processor.h"
#include "diffusion/resnet_block.h"
#include "diffusion/transformer2d.h"

namespace a2a {

// What every block receives besides its input.
struct UNetConditioning {
  at::Tensor temb;                    // [B, temb_channels] or undefined
  at::Tensor encoder_hidden_states;   // [B, S, D]; undefined: attn2 attends to the block's own states
  at::Tensor attention_mask;          // additive bias for attn1, or undefined
  at::Tensor encoder_attention_mask;  // additive bias [B, 1, S] for attn2, or undefined
};

// The arguments of diffusers' get_down_block / get_mid_block / get_up_block for these block types.
// Each block reads the fields its Python constructor takes.
struct UNet2DBlockOptions {
  int64_t num_layers = 1;  // resnets per block (up blocks: layers_per_block + 1)
  // Transformer layers for each attention of the block; a single value applies to every one.
  std::vector<int64_t> transformer_layers_per_block = {1};
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks: width of the incoming hidden states
  std::optional<int64_t> temb_channels;
  double dropout = 0.0;
  bool add_downsample = true;
  bool add_upsample = true;
  double resnet_eps = 1e-6;
  std::string resnet_act_fn = "swish";
  int64_t resnet_groups = 32;
  std::string resnet_time_scale_shift = "default";
  double output_scale_factor = 1.0;
  int64_t downsample_padding = 1;
  int64_t num_attention_heads = 1;  // heads; head dim = out_channels / heads
  std::optional<int64_t> cross_attention_dim = 1280;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
  // UNetMidBlock2D only (the VAE's mid block): spatial self-attention between the resnets.
  bool add_attention = true;
  std::optional<int64_t> attention_head_dim;  // channels per head; in_channels when unset
  std::optional<int64_t> attn_groups;         // resnet_groups when unset (time_scale_shift "default")
};

// Pieces of the blocks' constructors, shared with the 3-D blocks of diffusion/unet3d_blocks.h.
ResnetBlock2DOptions resnet_options(const UNet2DBlockOptions& o, int64_t in_channels, int64_t out_channels);
Downsample2D make_downsampler(const UNet2DBlockOptions& o);  // conv, stride 2, downsample_padding
Upsample2D make_upsampler(const UNet2DBlockOptions& o);      // nearest x2 (or to a size), conv
// Input width of resnet i of an up block: the previous output (or its own width) plus the skip state.
int64_t up_resnet_in_channels(const UNet2DBlockOptions& o, int64_t i);
// "bad_input" unless an up block got one skip state per resnet.
void check_skip_count(const std::vector<at::Tensor>& res, size_t expected, const char* block);

class UNetDownBlockImpl : public torch::nn::Module {
 public:
  // Returns the block output and the states it hands to the up path: one per resnet, plus the
  // downsampled output when the block downsamples.
  virtual std::pair<at::Tensor, std::vector<at::Tensor>> forward(const at::Tensor& hidden_states,
                                                                 const UNetConditioning& cond) = 0;
};

class UNetMidBlockImpl : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& hidden_states, const UNetConditioning& cond) = 0;
};

class UNetUpBlockImpl : public torch::nn::Module {
 public:
  // res_hidden_states: this block's skip states in down-path order (the last is concatenated first);
  // exactly num_resnets() of them. upsample_size: explicit [H, W] for the upsampler, or empty.
  virtual at::Tensor forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                             const UNetConditioning& cond, const std::vector<int64_t>& upsample_size) = 0;
  virtual size_t num_resnets() const = 0;
};

class DownBlock2DImpl : public UNetDownBlockImpl {
 public:
  explicit DownBlock2DImpl(const UNet2DBlockOptions& options);
  std::pair<at::Tensor, std::vector<at::Tensor>> forward(const at::Tensor& hidden_states,
                                                         const UNetConditioning& cond) override;

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList downsamplers{nullptr};  // null for the last block

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(DownBlock2D);

class CrossAttnDownBlock2DImpl : public UNetDownBlockImpl {
 public:
  explicit CrossAttnDownBlock2DImpl(const UNet2DBlockOptions& options);
  std::pair<at::Tensor, std::vector<at::Tensor>> forward(const at::Tensor& hidden_states,
                                                         const UNetConditioning& cond) override;

  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList downsamplers{nullptr};

 private:
  std::vector<Transformer2DModel> attention_list_;
  std::vector<ResnetBlock2D> resnet_list_;
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(CrossAttnDownBlock2D);

// resnets.0, then (attention, resnet) pairs. With add_attention = false (what UNet2DConditionModel's
// mid_block_type "UNetMidBlock2D" builds, num_layers = 0) it is resnets only.
class UNetMidBlock2DImpl : public UNetMidBlockImpl {
 public:
  explicit UNetMidBlock2DImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const UNetConditioning& cond) override;

  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};

 private:
  std::vector<Attention> attention_list_;
  std::vector<ResnetBlock2D> resnet_list_;
};
TORCH_MODULE(UNetMidBlock2D);

class UNetMidBlock2DCrossAttnImpl : public UNetMidBlockImpl {
 public:
  explicit UNetMidBlock2DCrossAttnImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const UNetConditioning& cond) override;

  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};

 private:
  std::vector<Transformer2DModel> attention_list_;
  std::vector<ResnetBlock2D> resnet_list_;
};
TORCH_MODULE(UNetMidBlock2DCrossAttn);

class UpBlock2DImpl : public UNetUpBlockImpl {
 public:
  explicit UpBlock2DImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                     const UNetConditioning& cond, const std::vector<int64_t>& upsample_size) override;
  size_t num_resnets() const override { return resnet_list_.size(); }

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};  // null for the last block

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(UpBlock2D);

class CrossAttnUpBlock2DImpl : public UNetUpBlockImpl {
 public:
  explicit CrossAttnUpBlock2DImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                     const UNetConditioning& cond, const std::vector<int64_t>& upsample_size) override;
  size_t num_resnets() const override { return resnet_list_.size(); }

  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};

 private:
  std::vector<Transformer2DModel> attention_list_;
  std::vector<ResnetBlock2D> resnet_list_;
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(CrossAttnUpBlock2D);

}  // namespace a2a
