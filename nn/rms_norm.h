#pragma once
// Root-mean-square layer norm (Llama's LlamaRMSNorm, T5's T5LayerNorm): no mean subtraction, no bias.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace a2a {

// weight · x · rsqrt(mean(x²) + eps) over the last dim. The statistics and the scaling are float32 whatever
// the input's dtype (as both references do for half-precision inputs); the result has the input's dtype
// before the weight multiplies it.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t hidden_size, double eps);
  at::Tensor forward(const at::Tensor& hidden_states);

  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace a2a
