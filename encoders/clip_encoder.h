#pragma once
// The transformer that CLIP's text and vision towers share (transformers' CLIPEncoder): pre-norm layers
// named like the checkpoint, encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1/fc2,
// layer_norm2}, and the activations their configs name.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace a2a {

// Applies the activation named by config.hidden_act: quick_gelu (x·σ(1.702x)), gelu (erf),
// gelu_new / gelu_pytorch_tanh (tanh approximation), relu, silu.
at::Tensor clip_activation(const at::Tensor& x, const std::string& hidden_act);
// Throws a2a::Error (input, "bad_config") naming `who` unless clip_activation knows `hidden_act`.
void check_clip_activation(const std::string& hidden_act, const std::string& who);

class CLIPAttentionImpl : public torch::nn::Module {
 public:
  CLIPAttentionImpl(int64_t hidden_size, int64_t num_heads);
  // hidden [B, L, D]; mask additive [B, 1, L, L] or undefined; causal adds the look-ahead mask.
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& mask, bool causal);

  int64_t num_heads;
  torch::nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(CLIPAttention);

class CLIPMLPImpl : public torch::nn::Module {
 public:
  CLIPMLPImpl(int64_t hidden_size, int64_t intermediate_size, std::string hidden_act);
  at::Tensor forward(const at::Tensor& hidden);

  std::string hidden_act;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(CLIPMLP);

// Pre-norm transformer layer: x + attn(ln1(x)), then x + mlp(ln2(x)).
class CLIPEncoderLayerImpl : public torch::nn::Module {
 public:
  CLIPEncoderLayerImpl(int64_t hidden_size, int64_t intermediate_size, int64_t num_heads, const std::string& hidden_act,
                       double layer_norm_eps);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& mask, bool causal);

  CLIPAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
  CLIPMLP mlp{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

class CLIPEncoderImpl : public torch::nn::Module {
 public:
  CLIPEncoderImpl(int64_t hidden_size, int64_t intermediate_size, int64_t num_heads, int64_t num_layers,
                  const std::string& hidden_act, double layer_norm_eps);
  // Returns the hidden states after each layer (layer 1..N); `stop_after` limits how many layers run
  // (-1 = all).
  std::vector<at::Tensor> forward(const at::Tensor& hidden, const at::Tensor& mask, bool causal,
                                  int64_t stop_after = -1);

  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(CLIPEncoder);

}  // namespace a2a
