#include "nn/seeded_init.h"

#include <torch/torch.h>

#include <cmath>

namespace a2a {

void initialize_seeded_weights(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (auto& p : module.named_parameters()) {
    at::Tensor& t = p.value();
    const std::string& name = p.key();
    auto noise = at::randn(t.sizes(), generator, t.options().device(torch::kCPU)).to(t.device());
    const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    const bool norm_scale =
        is_weight && (name.find("norm") != std::string::npos || name.find("LayerNorm") != std::string::npos);
    if (t.dim() >= 2) {
      t.copy_(noise / std::sqrt(static_cast<double>(t.numel() / t.size(0))));
    } else if (norm_scale) {
      t.copy_(1.0 + 0.1 * noise);
    } else {
      t.copy_(0.1 * noise);
    }
  }
}

}  // namespace a2a
