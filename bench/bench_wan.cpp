// A Wan 2.1 transformer step at the 1.3B model's widths (1536 wide, 12 heads of 128, FFN 8960, text 4096), two
// of its 30 blocks, on a small but realistic latent (16 x 3 x 16 x 24 -> 288 tokens) with 512 text tokens: the
// analytic GFLOP/s next to a 2048^3 fp32 GEMM measured in the same run.
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "diffusion/wan_transformer_3d.h"
#include "nn/seeded_init.h"

namespace {

// Multiply-adds x 2 of one block: self-attention (QKVO projections, scores, values), cross-attention on L text
// states, the FFN; norms, modulation and the rotary product are left out.
double wan_block_flops(double tokens, double text_tokens, double dim, double ffn) {
  const double self_attention = 4 * tokens * dim * dim + 2 * tokens * tokens * dim;
  const double cross_attention = 2 * tokens * dim * dim + 2 * text_tokens * dim * dim + 2 * tokens * text_tokens * dim;
  return 2 * (self_attention + cross_attention + 2 * tokens * dim * ffn);
}

void bench_wan() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto gemm = a2a::bench::GemmYardstick::measure();

  a2a::WanTransformer3DOptions o;  // Wan2.1-T2V-1.3B's widths
  o.num_attention_heads = 12;
  o.attention_head_dim = 128;
  o.ffn_dim = 8960;
  o.freq_dim = 256;
  o.num_layers = 2;
  a2a::WanTransformer3DModel model(o);
  a2a::initialize_seeded_weights(*model, 0);
  model->eval();
  const int64_t frames = 3, height = 16, width = 24, text_tokens = 512;
  const auto latents = torch::randn({1, o.in_channels, frames, height, width});
  const auto text = torch::randn({1, text_tokens, o.text_dim});
  const auto timestep = torch::tensor({500.0});
  const double seconds = a2a::bench::seconds_per_call([&] { model->forward(latents, timestep, text); }, 1, 3, 1.0);
  const double tokens = static_cast<double>(frames * (height / 2) * (width / 2));
  const double flops = o.num_layers * wan_block_flops(tokens, text_tokens, o.inner_dim(), o.ffn_dim);
  std::printf("wan transformer, 2 of 30 blocks at 1.3B widths, %.0f tokens + %lld text, %d threads\n", tokens,
              static_cast<long long>(text_tokens), at::get_num_threads());
  gemm.report_step(seconds, flops);
}

}  // namespace

A2A_BENCH("wan_transformer", bench_wan);
