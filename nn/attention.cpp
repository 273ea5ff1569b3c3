#include "nn/attention.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <cmath>

#include "nn/dtype.h"

namespace a2a {

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& mask, std::optional<double> scale, bool causal) {
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
#if TORCH_VERSION_MAJOR >= 2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1)
  // The fused kernels pay off on GPUs; on CPU the math path below is as fast and bit-stable.
  if (!q.device().is_cpu()) {
    // The fused kernels take a float mask only in the query's dtype; clamped so that it stays finite there.
    at::Tensor m = mask;
    if (m.defined() && m.is_floating_point() && m.scalar_type() != q.scalar_type())
      m = m.clamp_min(lowest_finite(q.scalar_type())).to(q.scalar_type());
    return at::scaled_dot_product_attention(q, k, v, m.defined() ? c10::optional<at::Tensor>(m) : c10::nullopt, 0.0,
                                            causal && !m.defined(), s);
  }
#endif
  // Scores and softmax in float32 whatever the inputs' dtype, as transformers' Llama and diffusers'
  // upcast_softmax do; the weights go back to v's dtype for the second product.
  at::Tensor scores = (at::matmul(q, k.transpose(-2, -1)) * s).to(at::kFloat);
  if (causal) {
    const int64_t lq = q.size(-2), lk = k.size(-2);
    auto keep = at::ones({lq, lk}, q.options().dtype(at::kBool)).tril(lk - lq);
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  }
  if (mask.defined()) {
    if (mask.scalar_type() == at::kBool) {
      scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
    } else {
      scores = scores + mask;
    }
  }
  return at::matmul(at::softmax(scores, -1).to(v.scalar_type()), v);
}

}  // namespace a2a
