#include "diffusion/resnet_block.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>

#include "base/error.h"
#include "nn/dtype.h"

namespace a2a {

DiffusersActivation parse_diffusers_activation(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "silu" || lower == "swish") return DiffusersActivation::SiLU;
  if (lower == "mish") return DiffusersActivation::Mish;
  if (lower == "gelu") return DiffusersActivation::GELU;
  if (lower == "relu") return DiffusersActivation::ReLU;
  throw_input_error("unsupported_activation",
                    "unsupported activation function '" + name + "' (expected silu, swish, mish, gelu or relu)");
}

at::Tensor apply_activation(DiffusersActivation activation, const at::Tensor& x) {
  switch (activation) {
    case DiffusersActivation::SiLU: return at::silu(x);
    // LibTorch 1.13 has no bfloat16 / float16 CPU kernel for mish: computed in float32 there.
    case DiffusersActivation::Mish:
      return is_cpu_half_precision(x) ? at::mish(x.to(at::kFloat)).to(x.scalar_type()) : at::mish(x);
    case DiffusersActivation::GELU: return at::gelu(x);
    case DiffusersActivation::ReLU: return at::relu(x);
  }
  return x;
}

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& options)
    : options_(options), activation_(parse_diffusers_activation(options.non_linearity)) {
  const int64_t in = options.in_channels;
  const int64_t out = options.out_channels.value_or(in);
  const int64_t groups_out = options.groups_out.value_or(options.groups);
  const int64_t conv2_out = options.conv_2d_out_channels.value_or(out);
  if (options.time_embedding_norm != "default" && options.time_embedding_norm != "scale_shift") {
    throw_input_error("unsupported_model_config", "ResnetBlock2D: time_embedding_norm '" + options.time_embedding_norm +
                                                      "' is not supported (expected 'default' or 'scale_shift')");
  }
  options_.out_channels = out;
  options_.groups_out = groups_out;
  options_.conv_2d_out_channels = conv2_out;

  norm1 =
      register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(options.groups, in).eps(options.eps)));
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
  if (options.temb_channels) {
    const int64_t proj_out = options.time_embedding_norm == "scale_shift" ? 2 * out : out;
    time_emb_proj = register_module("time_emb_proj", torch::nn::Linear(*options.temb_channels, proj_out));
  }
  norm2 = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups_out, out).eps(options.eps)));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, conv2_out, 3).padding(1)));
  const bool use_shortcut = options.use_in_shortcut.value_or(in != conv2_out);
  if (use_shortcut) {
    conv_shortcut =
        register_module("conv_shortcut",
                        torch::nn::Conv2d(torch::nn::Conv2dOptions(in, conv2_out, 1).bias(options.conv_shortcut_bias)));
  }
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  at::Tensor h = apply_activation(activation_, norm1(x));
  h = conv1(h);
  at::Tensor t;
  if (time_emb_proj && temb.defined()) {
    t = options_.skip_time_act ? temb : apply_activation(activation_, temb);
    t = time_emb_proj(t).unsqueeze(-1).unsqueeze(-1);
  }
  if (options_.time_embedding_norm == "scale_shift") {
    if (!t.defined()) {
      throw_input_error("missing_input", "ResnetBlock2D with time_embedding_norm 'scale_shift' needs a time embedding");
    }
    auto chunks = t.chunk(2, 1);
    h = norm2(h) * (1 + chunks[0]) + chunks[1];
  } else {
    if (t.defined()) h = h + t;
    h = norm2(h);
  }
  h = apply_activation(activation_, h);
  h = conv2(dropout(h));
  at::Tensor shortcut = conv_shortcut ? conv_shortcut(x) : x;
  at::Tensor out = shortcut + h;
  if (options_.output_scale_factor != 1.0) out = out / options_.output_scale_factor;
  return out;
}

Downsample2DImpl::Downsample2DImpl(const Downsample2DOptions& options) : options_(options) {
  const int64_t out = options.out_channels.value_or(options.channels);
  options_.out_channels = out;
  if (options.use_conv) {
    conv =
        register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels, out, options.kernel_size)
                                                      .stride(2)
                                                      .padding(options.padding)
                                                      .bias(options.bias)));
  } else if (out != options.channels) {
    throw_input_error("unsupported_model_config", "Downsample2D without conv needs out_channels == channels");
  }
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) {
  if (!conv) return at::avg_pool2d(x, {2, 2}, {2, 2});
  if (options_.padding == 0) return conv(at::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(const Upsample2DOptions& options) : options_(options) {
  const int64_t out = options.out_channels.value_or(options.channels);
  options_.out_channels = out;
  if (options.use_conv_transpose) {
    conv_transpose =
        register_module("conv", torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(
                                                               options.channels, out, options.kernel_size.value_or(4))
                                                               .stride(2)
                                                               .padding(options.padding)
                                                               .bias(options.bias)));
  } else if (options.use_conv) {
    conv = register_module(
        "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels, out, options.kernel_size.value_or(3))
                                      .padding(options.padding)
                                      .bias(options.bias)));
  }
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, const std::vector<int64_t>& output_size) {
  if (conv_transpose) return conv_transpose_forward(*conv_transpose, x);
  at::Tensor h = x;
  if (options_.interpolate) {
    namespace F = torch::nn::functional;
    auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
    if (output_size.empty()) {
      opts = opts.scale_factor(std::vector<double>{2.0, 2.0});
    } else {
      opts = opts.size(output_size);
    }
    h = F::interpolate(h, opts);
  }
  if (conv) h = conv(h);
  return h;
}

}  // namespace a2a
