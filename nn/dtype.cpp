#include "nn/dtype.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include <limits>

#include "base/error.h"

namespace a2a {

at::ScalarType dtype_from_name(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  throw_input_error("bad_dtype", "unknown dtype '" + name + "' (expected float32, bfloat16 or float16)");
}

std::string dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return c10::toString(dtype);
  }
}

void cast_floating_point(torch::nn::Module& module, at::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  auto cast = [dtype](at::Tensor& t) {
    if (t.defined() && t.is_floating_point() && t.scalar_type() != dtype) t.set_data(t.to(dtype));
  };
  for (auto& item : module.named_parameters(/*recurse=*/true)) cast(item.value());
  for (auto& item : module.named_buffers(/*recurse=*/true)) cast(item.value());
}

at::ScalarType floating_point_dtype(const torch::nn::Module& module) {
  for (const auto& p : module.parameters(/*recurse=*/true))
    if (p.is_floating_point()) return p.scalar_type();
  return at::kFloat;
}

double lowest_finite(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case at::kHalf: return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

bool is_cpu_half_precision(const at::Tensor& x) {
  return x.is_cpu() && (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf);
}

namespace {

// A float32 twin of the module (its options kept exactly, whatever their LibTorch representation) for one call.
template <class Conv>
at::Tensor float32_forward(Conv& conv, const at::Tensor& x) {
  if (!is_cpu_half_precision(x)) return conv.forward(x);
  auto twin = std::dynamic_pointer_cast<Conv>(conv.clone());
  cast_floating_point(*twin, at::kFloat);
  return twin->forward(x.to(at::kFloat)).to(x.scalar_type());
}

}  // namespace

at::Tensor conv_transpose_forward(torch::nn::ConvTranspose1dImpl& conv, const at::Tensor& x) {
  return float32_forward(conv, x);
}

at::Tensor conv_transpose_forward(torch::nn::ConvTranspose2dImpl& conv, const at::Tensor& x) {
  return float32_forward(conv, x);
}

}  // namespace a2a
