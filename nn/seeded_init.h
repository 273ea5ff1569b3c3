#pragma once
// Seeded random weights in the reference fixtures' scheme, for the tiny built-in presets.
#include <torch/nn/module.h>

#include <cstdint>

namespace a2a {

// N(0, 1/fan_in) for kernels, matrices and embedding tables, 1 + 0.1·N for norm scales (parameters
// named *norm*.weight or *LayerNorm.weight), 0.1·N for other vectors; drawn in parameter order from a
// private CPU generator seeded with `seed`, so the global generator is untouched.
void initialize_seeded_weights(torch::nn::Module& module, uint64_t seed);

}  // namespace a2a
