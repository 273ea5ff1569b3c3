#pragma once
// diffusers' Transformer2DModel for continuous inputs (transformers/transformer_2d.py, 0.29.2) with its
// BasicTransformerBlock and FeedForward (attention.py, activations.py), named like the state_dict:
// norm, proj_in, transformer_blocks.N.{norm1, attn1, norm2, attn2, norm3, ff.net.0.proj, ff.net.2}, proj_out.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/attention_processor.h"

namespace a2a {

// net.0 of FeedForward: a projection followed by its activation. "geglu" projects to 2·dim_out and
// gates (h · gelu(gate)); "gelu" / "gelu-approximate" apply (tanh-)GELU; "geglu-approximate" is
// diffusers' ApproximateGELU (x · sigmoid(1.702 x)).
class FeedForwardActivationImpl : public torch::nn::Module {
 public:
  FeedForwardActivationImpl(const std::string& activation_fn, int64_t dim_in, int64_t dim_out, bool bias);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Linear proj{nullptr};

 private:
  std::string activation_fn_;
};
TORCH_MODULE(FeedForwardActivation);

struct FeedForwardOptions {
  int64_t dim = 0;
  std::optional<int64_t> dim_out;  // dim when unset
  int64_t mult = 4;
  double dropout = 0.0;
  std::string activation_fn = "geglu";
  bool final_dropout = false;
  std::optional<int64_t> inner_dim;  // dim·mult when unset
  bool bias = true;
};

class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(const FeedForwardOptions& options);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList net{nullptr};  // [activation, Dropout, Linear(, Dropout)]
  FeedForwardActivation act{nullptr};
  torch::nn::Linear out_proj{nullptr};  // net.2
};
TORCH_MODULE(FeedForward);

struct BasicTransformerBlockOptions {
  int64_t dim = 0;
  int64_t num_attention_heads = 0;
  int64_t attention_head_dim = 0;
  double dropout = 0.0;
  std::optional<int64_t> cross_attention_dim;  // unset and !double_self_attention: no attn2
  std::string activation_fn = "geglu";
  bool attention_bias = false;
  bool only_cross_attention = false;   // attn1 attends to encoder_hidden_states too
  bool double_self_attention = false;  // attn2 is a second self-attention
  bool upcast_attention = false;
  bool norm_elementwise_affine = true;
  double norm_eps = 1e-5;
  bool final_dropout = false;
  std::optional<int64_t> ff_inner_dim;
  bool ff_bias = true;
  bool attention_out_bias = true;
};

// norm_type "layer_norm" (the only one UNet2DConditionModel builds):
// x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x)).
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit BasicTransformerBlockImpl(const BasicTransformerBlockOptions& options);
  // hidden_states [B, L, dim]; encoder_hidden_states [B, S, cross_attention_dim] or undefined, in which
  // case attn2 attends to the block's own normalised hidden states. Masks are additive biases.
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states = {},
                     const at::Tensor& attention_mask = {}, const at::Tensor& encoder_attention_mask = {});

  torch::nn::LayerNorm norm1{nullptr};
  Attention attn1{nullptr};
  torch::nn::LayerNorm norm2{nullptr};  // null without attn2
  Attention attn2{nullptr};
  torch::nn::LayerNorm norm3{nullptr};
  FeedForward ff{nullptr};

 private:
  BasicTransformerBlockOptions options_;
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DModelOptions {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t in_channels = 0;
  std::optional<int64_t> out_channels;  // in_channels when unset
  int64_t num_layers = 1;
  double dropout = 0.0;
  int64_t norm_num_groups = 32;
  std::optional<int64_t> cross_attention_dim;
  bool attention_bias = false;
  std::string activation_fn = "geglu";
  bool use_linear_projection = false;  // Linear proj_in/proj_out (SD 2.x) instead of 1x1 convs
  bool only_cross_attention = false;
  bool double_self_attention = false;
  bool upcast_attention = false;
  bool norm_elementwise_affine = true;
  double norm_eps = 1e-5;  // of the LayerNorms; the input GroupNorm always uses 1e-6
};

// Continuous-input Transformer2DModel: GroupNorm, proj_in, transformer blocks over the H·W tokens,
// proj_out, plus the input as residual.
class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DModelOptions& options);
  // hidden_states [B, in_channels, H, W] -> [B, out_channels, H, W].
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states = {},
                     const at::Tensor& attention_mask = {}, const at::Tensor& encoder_attention_mask = {});

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d proj_in_conv{nullptr};  // registered as proj_in (conv or linear, as configured)
  torch::nn::Linear proj_in_linear{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
  std::vector<BasicTransformerBlock> blocks;
  torch::nn::Conv2d proj_out_conv{nullptr};  // registered as proj_out
  torch::nn::Linear proj_out_linear{nullptr};

 private:
  Transformer2DModelOptions options_;
  int64_t inner_dim_ = 0;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace a2a
