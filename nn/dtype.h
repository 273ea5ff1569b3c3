#pragma once
// The compute dtype of a model: its name in a pipeline's `dtype` setting, and casting a module to it.
#include <ATen/Tensor.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace torch::nn {
class Module;
class ConvTranspose1dImpl;
class ConvTranspose2dImpl;
}  // namespace torch::nn

namespace a2a {

// "float32", "bfloat16" or "float16" (a pipeline's `dtype`) -> the scalar type. Throws a2a::Error (input,
// "bad_dtype") for any other name.
at::ScalarType dtype_from_name(const std::string& name);
// kFloat -> "float32", kBFloat16 -> "bfloat16", kHalf -> "float16"; c10's name for any other type.
std::string dtype_name(at::ScalarType dtype);

// Casts the floating-point parameters and buffers of the module tree to `dtype` in place, one tensor at a
// time, so that no second full copy is ever held. Integer and bool tensors (position ids, masks) keep their
// type, as PyTorch's module.to(dtype) does; LibTorch's Module::to(dtype) would cast them too.
void cast_floating_point(torch::nn::Module& module, at::ScalarType dtype);

// The dtype of the module's first floating-point parameter, or kFloat for a module without one.
at::ScalarType floating_point_dtype(const torch::nn::Module& module);

// torch.finfo(dtype).min: the lowest finite value of a floating-point dtype, for additive attention masks
// that must stay finite in that dtype.
double lowest_finite(at::ScalarType dtype);

// Whether `x` is bfloat16 or float16 on the CPU, where LibTorch lacks some kernels (mish, reflection padding)
// or gets them wrong (transposed convolution), so that the op must run on a float32 copy.
bool is_cpu_half_precision(const at::Tensor& x);

// The module's forward, through float32 copies of input, weight and bias when is_cpu_half_precision(x): on
// the CPU, LibTorch 1.13's oneDNN route for a bfloat16 transposed convolution treats the weight as a forward
// convolution's and fails whenever in and out channels differ. The result has x's dtype.
at::Tensor conv_transpose_forward(torch::nn::ConvTranspose1dImpl& conv, const at::Tensor& x);
at::Tensor conv_transpose_forward(torch::nn::ConvTranspose2dImpl& conv, const at::Tensor& x);

}  // namespace a2a
