#pragma once
// ImageBind's trunk (imagebind/models/transformer.py SimpleTransformer with BlockWithMasking), named like
// the checkpoint under `modality_trunks.<modality>.`: pre_transformer_layer.0 (vision's LayerNorm),
// blocks.N.{attn, norm_1, mlp.fc1, mlp.fc2, norm_2}.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "nn/multihead_attention.h"

namespace a2a {

struct ImageBindTrunkOptions {
  int64_t embed_dim = 768;
  int64_t num_blocks = 12;
  int64_t num_heads = 12;
  bool pre_transformer_ln = false;  // vision only
  bool add_bias_kv = false;         // audio, depth, thermal, imu
  int64_t mlp_ratio = 4;
  // Every LayerNorm of the trunk (pre-LN, norm_1, norm_2) uses SimpleTransformer's eps.
  double layer_norm_eps = 1e-6;
  // The trunks' drop_path rates only act in training: inference ignores them, so they are not options.
};

// Mlp: fc1 -> exact GELU -> fc2 (dropout 0).
class ImageBindMlpImpl : public torch::nn::Module {
 public:
  ImageBindMlpImpl(int64_t dim, int64_t hidden);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ImageBindMlp);

// x + attn(norm_1(x), mask), then x + mlp(norm_2(x)); no layer scale in any ImageBind trunk.
class ImageBindBlockImpl : public torch::nn::Module {
 public:
  explicit ImageBindBlockImpl(const ImageBindTrunkOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& attn_mask = {});

  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm norm_1{nullptr};
  ImageBindMlp mlp{nullptr};
  torch::nn::LayerNorm norm_2{nullptr};
};
TORCH_MODULE(ImageBindBlock);

class ImageBindTransformerImpl : public torch::nn::Module {
 public:
  explicit ImageBindTransformerImpl(const ImageBindTrunkOptions& options);
  // tokens [B, L, D] -> [B, L, D]. attn_mask: additive [L, L] (text's causal mask) or undefined.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& attn_mask = {});

  const ImageBindTrunkOptions& options() const { return options_; }

  // Sequential(LayerNorm or Identity, rearrange): only vision's holds parameters.
  torch::nn::Sequential pre_transformer_layer{nullptr};
  torch::nn::LayerNorm pre_layer_norm{nullptr};  // pre_transformer_layer[0] when it is a LayerNorm
  torch::nn::ModuleList blocks{nullptr};

 private:
  ImageBindTrunkOptions options_;
};
TORCH_MODULE(ImageBindTransformer);

}  // namespace a2a
