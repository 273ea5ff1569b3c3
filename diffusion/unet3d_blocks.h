#pragma once
// The 3-D UNet blocks of diffusers 0.29.2 (unets/unet_3d_blocks.py) that UNet3DConditionModel builds for
// ModelScope text-to-video, and TemporalConvLayer (resnet.py). Frames travel folded into the batch
// ([B·F, C, H, W]); the 2-D pieces work per frame, temp_convs and temp_attentions along the frames.
// Named like the state_dict: resnets.N, temp_convs.N, attentions.N, temp_attentions.N,
// downsamplers.0.conv, upsamplers.0.conv.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "diffusion/resnet_block.h"
#include "diffusion/transformer2d.h"
#include "diffusion/transformer_temporal.h"
#include "diffusion/unet_blocks.h"

namespace a2a {

// Four (GroupNorm, SiLU, [Dropout,] Conv3d kernel (3, 1, 1)) stages over [B, C, F, H, W], plus the
// input as residual. Registered as conv1.{0,2} and conv2..conv4.{0,3}.
class TemporalConvLayerImpl : public torch::nn::Module {
 public:
  TemporalConvLayerImpl(int64_t in_dim, std::optional<int64_t> out_dim = {}, double dropout = 0.0,
                        int64_t norm_num_groups = 32);
  // hidden_states [B·F, C, H, W] -> the same shape.
  at::Tensor forward(const at::Tensor& hidden_states, int64_t num_frames);

  torch::nn::Sequential conv1{nullptr};
  torch::nn::Sequential conv2{nullptr};
  torch::nn::Sequential conv3{nullptr};
  torch::nn::Sequential conv4{nullptr};
};
TORCH_MODULE(TemporalConvLayer);

// What every 3-D block receives besides its input: the per-frame conditioning (temb and
// encoder_hidden_states already repeated num_frames times) and the frame count.
struct UNet3DConditioning {
  at::Tensor temb;                   // [B·F, temb_channels]
  at::Tensor encoder_hidden_states;  // [B·F, S, D] or undefined (blocks without cross-attention)
  int64_t num_frames = 1;
};

class UNet3DDownBlockImpl : public torch::nn::Module {
 public:
  // The block output and its skip states (one per resnet, plus the downsampled output).
  virtual std::pair<at::Tensor, std::vector<at::Tensor>> forward(const at::Tensor& hidden_states,
                                                                 const UNet3DConditioning& cond) = 0;
};

class UNet3DUpBlockImpl : public torch::nn::Module {
 public:
  // res_hidden_states in down-path order, exactly num_resnets() of them; upsample_size [H, W] or empty.
  virtual at::Tensor forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                             const UNet3DConditioning& cond, const std::vector<int64_t>& upsample_size) = 0;
  virtual size_t num_resnets() const = 0;
};

// The blocks read UNet2DBlockOptions as get_down_block / get_up_block fill them for the 3-D types;
// num_attention_heads is the per-head width here: the spatial and temporal transformers get
// out_channels / num_attention_heads heads of num_attention_heads channels (the reference's argument
// order).
class DownBlock3DImpl : public UNet3DDownBlockImpl {
 public:
  explicit DownBlock3DImpl(const UNet2DBlockOptions& options);
  std::pair<at::Tensor, std::vector<at::Tensor>> forward(const at::Tensor& hidden_states,
                                                         const UNet3DConditioning& cond) override;

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList temp_convs{nullptr};
  torch::nn::ModuleList downsamplers{nullptr};  // null for the last block

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  std::vector<TemporalConvLayer> temp_conv_list_;
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(DownBlock3D);

class CrossAttnDownBlock3DImpl : public UNet3DDownBlockImpl {
 public:
  explicit CrossAttnDownBlock3DImpl(const UNet2DBlockOptions& options);
  std::pair<at::Tensor, std::vector<at::Tensor>> forward(const at::Tensor& hidden_states,
                                                         const UNet3DConditioning& cond) override;

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList temp_convs{nullptr};
  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList temp_attentions{nullptr};
  torch::nn::ModuleList downsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  std::vector<TemporalConvLayer> temp_conv_list_;
  std::vector<Transformer2DModel> attention_list_;
  std::vector<TransformerTemporalModel> temp_attention_list_;
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(CrossAttnDownBlock3D);

// resnets.0 and temp_convs.0, then num_layers (attention, temporal attention, resnet, temporal conv).
class UNetMidBlock3DCrossAttnImpl : public torch::nn::Module {
 public:
  explicit UNetMidBlock3DCrossAttnImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const UNet3DConditioning& cond);

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList temp_convs{nullptr};
  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList temp_attentions{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  std::vector<TemporalConvLayer> temp_conv_list_;
  std::vector<Transformer2DModel> attention_list_;
  std::vector<TransformerTemporalModel> temp_attention_list_;
};
TORCH_MODULE(UNetMidBlock3DCrossAttn);

class UpBlock3DImpl : public UNet3DUpBlockImpl {
 public:
  explicit UpBlock3DImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                     const UNet3DConditioning& cond, const std::vector<int64_t>& upsample_size) override;
  size_t num_resnets() const override { return resnet_list_.size(); }

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList temp_convs{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};  // null for the last block

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  std::vector<TemporalConvLayer> temp_conv_list_;
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(UpBlock3D);

class CrossAttnUpBlock3DImpl : public UNet3DUpBlockImpl {
 public:
  explicit CrossAttnUpBlock3DImpl(const UNet2DBlockOptions& options);
  at::Tensor forward(const at::Tensor& hidden_states, const std::vector<at::Tensor>& res_hidden_states,
                     const UNet3DConditioning& cond, const std::vector<int64_t>& upsample_size) override;
  size_t num_resnets() const override { return resnet_list_.size(); }

  torch::nn::ModuleList resnets{nullptr};
  torch::nn::ModuleList temp_convs{nullptr};
  torch::nn::ModuleList attentions{nullptr};
  torch::nn::ModuleList temp_attentions{nullptr};
  torch::nn::ModuleList upsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_list_;
  std::vector<TemporalConvLayer> temp_conv_list_;
  std::vector<Transformer2DModel> attention_list_;
  std::vector<TransformerTemporalModel> temp_attention_list_;
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(CrossAttnUpBlock3D);

}  // namespace a2a
