// The T5 / UMT5 text encoder at FLAN-T5-base's size: forward time, its arithmetic rate next to a large
// fp32 GEMM on the same machine, and what UMT5's per-block position bias costs over T5's shared one.
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "encoders/t5_encoder_model.h"

namespace {

// Multiply-adds ×2 of the projections and feed-forward per token, plus QKᵀ and PV (4·L·inner per token).
// Norms, the bias lookup and the activations are left out.
double t5_encoder_flops(const a2a::T5EncoderConfig& c, int64_t batch, int64_t length) {
  const double d = static_cast<double>(c.d_model), inner = static_cast<double>(c.inner_dim());
  const double ff_matrices = c.is_gated_act ? 3.0 : 2.0;
  const double per_token = 2.0 * (4.0 * d * inner + ff_matrices * d * static_cast<double>(c.d_ff)) +
                           4.0 * static_cast<double>(length) * inner;
  return static_cast<double>(batch * length * c.num_layers) * per_token;
}

void bench_t5() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);

  const int64_t n = 2048;
  const double gemm_s = a2a::bench::gemm_seconds(n, 1.0);
  const double gemm_gflops = 2.0 * n * n * n / gemm_s / 1e9;

  // google/flan-t5-base's encoder: 12 layers, 768 wide, 12 heads of 64, gated-gelu 2048.
  a2a::T5EncoderConfig c;
  c.d_model = 768;
  c.d_kv = 64;
  c.d_ff = 2048;
  c.num_layers = 12;
  c.num_heads = 12;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_new";
  c.is_gated_act = true;
  a2a::T5EncoderModel t5(c);
  t5->eval();

  const int64_t batch = 2, length = 128;
  at::Tensor ids = torch::randint(0, c.vocab_size, {batch, length}, torch::kLong);
  at::Tensor mask = torch::ones({batch, length}, torch::kLong);
  mask[1].slice(0, length / 2).fill_(0);
  const double t5_s = a2a::bench::seconds_per_call([&] { t5->forward(ids, mask); }, 1, 3, 1.0);
  const double gflops = t5_encoder_flops(c, batch, length) / t5_s / 1e9;

  a2a::T5EncoderConfig u = c;
  u.model_type = "umt5";
  a2a::T5EncoderModel umt5(u);
  umt5->eval();
  const double umt5_s = a2a::bench::seconds_per_call([&] { umt5->forward(ids, mask); }, 1, 3, 1.0);

  std::printf("fp32 GEMM %lldx%lldx%lld: %.3f s, %.1f GFLOP/s\n", static_cast<long long>(n), static_cast<long long>(n),
              static_cast<long long>(n), gemm_s, gemm_gflops);
  std::printf(
      "T5 encoder (FLAN-T5-base size), batch %lld x %lld tokens: %.3f s, %.1f GFLOP/s = %.0f %% of the GEMM rate\n",
      static_cast<long long>(batch), static_cast<long long>(length), t5_s, gflops, 100.0 * gflops / gemm_gflops);
  std::printf("UMT5 (a position bias per block) vs T5 (block 0's reused): %.3f s vs %.3f s, ratio %.2f\n", umt5_s, t5_s,
              umt5_s / t5_s);
}

}  // namespace

A2A_BENCH("t5_encoder", bench_t5);
