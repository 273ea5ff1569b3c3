#pragma once
// diffusers' FP32LayerNorm (normalization.py, 0.33.1): a LayerNorm computed in float32 whatever the input's
// dtype (weight and bias upcast too), the result cast back to the input's dtype. Named like nn.LayerNorm's
// state_dict: weight and bias, only with elementwise_affine.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace a2a {

class FP32LayerNormImpl : public torch::nn::Module {
 public:
  FP32LayerNormImpl(int64_t dim, double eps, bool elementwise_affine);
  // Normalises over the last dim.
  at::Tensor forward(const at::Tensor& input);

  at::Tensor weight;  // undefined without elementwise_affine
  at::Tensor bias;

 private:
  int64_t dim_;
  double eps_;
};
TORCH_MODULE(FP32LayerNorm);

}  // namespace a2a
