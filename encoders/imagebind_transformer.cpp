#include "encoders/imagebind_transformer.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a {

ImageBindMlpImpl::ImageBindMlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

at::Tensor ImageBindMlpImpl::forward(const at::Tensor& x) { return fc2(torch::gelu(fc1(x))); }

ImageBindBlockImpl::ImageBindBlockImpl(const ImageBindTrunkOptions& o) {
  auto norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.embed_dim}).eps(o.layer_norm_eps)); };
  MultiheadAttentionOptions attention;
  attention.embed_dim = o.embed_dim;
  attention.num_heads = o.num_heads;
  attention.add_bias_kv = o.add_bias_kv;
  attn = register_module("attn", MultiheadAttention(attention));
  norm_1 = register_module("norm_1", norm());
  mlp = register_module("mlp", ImageBindMlp(o.embed_dim, o.mlp_ratio * o.embed_dim));
  norm_2 = register_module("norm_2", norm());
}

at::Tensor ImageBindBlockImpl::forward(const at::Tensor& x, const at::Tensor& attn_mask) {
  auto h = x + attn(norm_1(x), attn_mask);
  return h + mlp(norm_2(h));
}

ImageBindTransformerImpl::ImageBindTransformerImpl(const ImageBindTrunkOptions& o) : options_(o) {
  if (o.num_blocks < 0 || o.mlp_ratio <= 0) {
    throw_input_error("bad_config", "ImageBind trunk: num_blocks must be non-negative and mlp_ratio positive");
  }
  pre_transformer_layer = torch::nn::Sequential();
  if (o.pre_transformer_ln) {
    pre_layer_norm = torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.embed_dim}).eps(o.layer_norm_eps));
    pre_transformer_layer->push_back(pre_layer_norm);
  } else {
    pre_transformer_layer->push_back(torch::nn::Identity());
  }
  register_module("pre_transformer_layer", pre_transformer_layer);
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_blocks; ++i) blocks->push_back(ImageBindBlock(o));
}

at::Tensor ImageBindTransformerImpl::forward(const at::Tensor& tokens, const at::Tensor& attn_mask) {
  at::Tensor x = pre_layer_norm ? pre_layer_norm(tokens) : tokens;
  for (size_t i = 0; i < blocks->size(); ++i) x = blocks->at<ImageBindBlockImpl>(i).forward(x, attn_mask);
  return x;
}

}  // namespace a2a
