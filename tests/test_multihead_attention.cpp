// nn/multihead_attention: the state_dict names of torch.nn.MultiheadAttention and its arithmetic, checked
// against LibTorch's own port of F.multi_head_attention_forward.
#include <torch/torch.h>

#include <set>

#include "base/error.h"
#include "nn/multihead_attention.h"
#include "test_support.h"
#include "weights/state_dict.h"

TEST_CASE("MultiheadAttention matches torch::nn::MultiheadAttention, with bias_k/bias_v and a mask", "[imagebind]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  const int64_t e = 12, heads = 3, b = 2, l = 5;
  for (bool bias_kv : {false, true}) {
    INFO("add_bias_kv " << bias_kv);
    a2a::MultiheadAttentionOptions o;
    o.embed_dim = e;
    o.num_heads = heads;
    o.add_bias_kv = bias_kv;
    a2a::MultiheadAttention ours(o);
    torch::nn::MultiheadAttention ref(torch::nn::MultiheadAttentionOptions(e, heads).add_bias_kv(bias_kv));
    ref->eval();
    std::set<std::string> names;
    for (const auto& kv : a2a::module_state(*ours)) {
      names.insert(kv.first);
      kv.second.copy_(torch::randn(kv.second.sizes()));
    }
    std::set<std::string> expected = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};
    if (bias_kv) expected.insert({"bias_k", "bias_v"});
    CHECK(names == expected);
    ref->in_proj_weight.copy_(ours->in_proj_weight);
    ref->in_proj_bias.copy_(ours->in_proj_bias);
    ref->out_proj->weight.copy_(ours->out_proj->weight);
    ref->out_proj->bias.copy_(ours->out_proj->bias);
    if (bias_kv) {
      ref->bias_k.copy_(ours->bias_k);
      ref->bias_v.copy_(ours->bias_v);
    }

    auto x = torch::randn({b, l, e});
    auto mask = torch::full({l, l}, -std::numeric_limits<float>::infinity()).triu(1);
    for (const at::Tensor& m : {at::Tensor(), mask}) {
      auto xt = x.transpose(0, 1);  // torch's default [L, B, E]
      auto expected_out = std::get<0>(ref->forward(xt, xt, xt, {}, false, m)).transpose(0, 1);
      CHECK(a2a::test::scaled_error(ours(x, m), expected_out) <= 1e-6);
    }
  }
  a2a::MultiheadAttentionOptions bad;
  bad.embed_dim = 10;
  bad.num_heads = 3;
  CHECK_THROWS_AS(a2a::MultiheadAttention(bad), a2a::Error);
  a2a::MultiheadAttentionOptions o;
  o.embed_dim = 4;
  a2a::MultiheadAttention attention(o);
  CHECK_THROWS_AS(attention(torch::zeros({1, 2, 5})), a2a::Error);
}
