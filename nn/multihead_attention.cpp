#include "nn/multihead_attention.h"

#include <torch/torch.h>

#include "base/error.h"
#include "nn/attention.h"

namespace a2a {

MultiheadAttentionImpl::MultiheadAttentionImpl(const MultiheadAttentionOptions& options) : options_(options) {
  const int64_t e = options.embed_dim;
  if (e <= 0 || options.num_heads <= 0 || e % options.num_heads != 0) {
    throw_input_error("bad_config", "multi-head attention: embed_dim " + std::to_string(e) +
                                        " must be a positive multiple of num_heads " +
                                        std::to_string(options.num_heads));
  }
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * e, e}));
  if (options.bias) in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * e}));
  if (options.add_bias_kv) {
    bias_k = register_parameter("bias_k", torch::zeros({1, 1, e}));
    bias_v = register_parameter("bias_v", torch::zeros({1, 1, e}));
  }
  out_proj = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(e, e).bias(options.bias)));
}

at::Tensor MultiheadAttentionImpl::forward(const at::Tensor& x, const at::Tensor& attn_mask) {
  if (x.dim() != 3 || x.size(2) != options_.embed_dim) {
    throw_input_error("bad_shape", "multi-head attention expects [batch, length, " +
                                       std::to_string(options_.embed_dim) + "], got " + c10::str(x.sizes()));
  }
  const int64_t b = x.size(0), l = x.size(1), e = options_.embed_dim, h = options_.num_heads;
  auto qkv = torch::nn::functional::linear(x, in_proj_weight, in_proj_bias).chunk(3, -1);
  at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  at::Tensor mask = attn_mask;
  if (options_.add_bias_kv) {
    k = torch::cat({k, bias_k.expand({b, 1, e})}, 1);
    v = torch::cat({v, bias_v.expand({b, 1, e})}, 1);
    if (mask.defined()) {
      auto shape = mask.sizes().vec();
      shape.back() = 1;
      auto column =
          mask.scalar_type() == at::kBool ? torch::ones(shape, mask.options()) : torch::zeros(shape, mask.options());
      mask = torch::cat({mask, column}, -1);
    }
  }
  auto heads = [&](const at::Tensor& t) { return t.view({b, t.size(1), h, e / h}).transpose(1, 2); };
  auto attended = scaled_dot_product_attention(heads(q), heads(k), heads(v), mask);
  return out_proj(attended.transpose(1, 2).reshape({b, l, e}));
}

}  // namespace a2a
