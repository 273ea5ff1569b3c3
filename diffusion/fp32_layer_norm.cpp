#include "diffusion/fp32_layer_norm.h"

#include <torch/torch.h>

namespace a2a {

FP32LayerNormImpl::FP32LayerNormImpl(int64_t dim, double eps, bool elementwise_affine) : dim_(dim), eps_(eps) {
  if (elementwise_affine) {
    weight = register_parameter("weight", torch::ones({dim}));
    bias = register_parameter("bias", torch::zeros({dim}));
  }
}

at::Tensor FP32LayerNormImpl::forward(const at::Tensor& input) {
  const c10::optional<at::Tensor> w =
      weight.defined() ? c10::optional<at::Tensor>(weight.to(at::kFloat)) : c10::nullopt;
  const c10::optional<at::Tensor> b = bias.defined() ? c10::optional<at::Tensor>(bias.to(at::kFloat)) : c10::nullopt;
  return at::layer_norm(input.to(at::kFloat), {dim_}, w, b, eps_).to(input.scalar_type());
}

}  // namespace a2a
