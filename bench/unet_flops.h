#pragma once
// The analytic cost of one UNet call, from the parameter shapes, shared by the 2-D and 3-D UNet benches.
#include <torch/nn/module.h>

#include <cstdint>

namespace a2a::bench {

struct UNetCallShape {
  int64_t levels = 4;   // len(block_out_channels)
  int64_t height = 64;  // latent height and width at level 0
  int64_t width = 64;
  int64_t frames = 1;           // 3-D UNets: every 2-D layer runs once per frame
  int64_t context_length = 77;  // text tokens cross-attended per frame
};

// Multiply-adds ×2 of every conv, linear and attention product of one call per sample: a conv costs
// 2·|weight|·H_out·W_out per frame (a temporal conv the same), a linear 2·|weight| per token, attention
// 4·L·S·inner (QKᵀ and PV), where the temporal attentions (temp_attentions, transformer_in) attend over the
// frames of each position. Norms, activations and the embedding MLPs' elementwise work are left out (< 1 %
// at these sizes).
double unet_flops_per_sample(const torch::nn::Module& unet, const UNetCallShape& shape);

}  // namespace a2a::bench
