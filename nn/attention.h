#pragma once
// Scaled dot-product attention shared by every model.
#include <ATen/Tensor.h>

#include <optional>

namespace a2a {

// softmax(q·kᵀ·scale + mask)·v over the last two dims. q [..., Lq, E], k [..., Lk, E], v [..., Lk, Ev].
// mask: optional additive float mask (0 / -inf) or boolean mask (true = attend), broadcastable to
// [..., Lq, Lk]. scale defaults to 1/sqrt(E). Uses at::scaled_dot_product_attention on LibTorch >= 2.0
// and the exact math path on 1.13. For half-precision inputs the scores and softmax are float32 (a float
// mask may stay float32) and the result has v's dtype.
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& mask = {}, std::optional<double> scale = std::nullopt,
                                        bool causal = false);

}  // namespace a2a
