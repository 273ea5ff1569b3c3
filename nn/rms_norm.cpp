#include "nn/rms_norm.h"

#include <torch/torch.h>

namespace a2a {

RMSNormImpl::RMSNormImpl(int64_t hidden_size, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({hidden_size}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& hidden_states) {
  auto x = hidden_states.to(at::kFloat);
  auto variance = x.pow(2).mean(-1, /*keepdim=*/true);
  x = x * at::rsqrt(variance + eps);
  return weight * x.to(hidden_states.scalar_type());
}

}  // namespace a2a
