// UNet2DConditionModel step time at Stable Diffusion 1.5's size, its arithmetic rate next to a large
// fp32 GEMM on the same machine, and what batching classifier-free guidance saves.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "bench/bench.h"
#include "bench/unet_flops.h"
#include "diffusion/unet2d_condition.h"

namespace {

void bench_unet() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);

  const int64_t n = 2048;
  const double gemm_s = a2a::bench::gemm_seconds(n, 1.0);
  const double gemm_gflops = 2.0 * n * n * n / gemm_s / 1e9;

  // Stable Diffusion 1.5's UNet is diffusers' default configuration with a 768-wide text context.
  a2a::UNet2DConditionOptions options;
  options.cross_attention_dim = {768};
  options.sample_size = 64;
  a2a::UNet2DConditionModel unet(options);

  const int64_t latent = 16, context_length = 77, batch = 2;
  at::Tensor latents = torch::randn({batch, 4, latent, latent});
  at::Tensor context = torch::randn({batch, context_length, 768});
  at::Tensor t = at::scalar_tensor(500, at::kLong);

  const double batched_s = a2a::bench::seconds_per_call([&] { unet(latents, t, context); }, 1, 3, 2.0);
  const double split_s = a2a::bench::seconds_per_call(
      [&] {
        unet(latents.slice(0, 0, 1), t, context.slice(0, 0, 1));
        unet(latents.slice(0, 1, 2), t, context.slice(0, 1, 2));
      },
      1, 3, 2.0);
  a2a::bench::UNetCallShape shape;
  shape.levels = static_cast<int64_t>(options.block_out_channels.size());
  shape.height = shape.width = latent;
  shape.context_length = context_length;
  const double flops = batch * a2a::bench::unet_flops_per_sample(*unet, shape);
  const double unet_gflops = flops / batched_s / 1e9;
  shape.height = shape.width = 64;
  const double full_size_flops = a2a::bench::unet_flops_per_sample(*unet, shape);

  std::printf("threads: %d\n", at::get_num_threads());
  std::printf("fp32 GEMM %lldx%lldx%lld: %.3f s, %.1f GFLOP/s\n", static_cast<long long>(n), static_cast<long long>(n),
              static_cast<long long>(n), gemm_s, gemm_gflops);
  std::printf("SD1.5 UNet step, batch %lld, %lldx%lld latent, %lld context tokens: %.3f s/step\n",
              static_cast<long long>(batch), static_cast<long long>(latent), static_cast<long long>(latent),
              static_cast<long long>(context_length), batched_s);
  std::printf("  analytic cost %.1f GFLOP/step (%.1f per sample; 64x64 would be %.0f per sample)\n", flops / 1e9,
              flops / batch / 1e9, full_size_flops / 1e9);
  std::printf("  achieved %.1f GFLOP/s = %.0f %% of the GEMM rate\n", unet_gflops, 100.0 * unet_gflops / gemm_gflops);
  std::printf("classifier-free guidance: one batch-2 call %.3f s vs two batch-1 calls %.3f s: speedup %.2fx\n",
              batched_s, split_s, split_s / batched_s);
}

}  // namespace

A2A_BENCH("unet", bench_unet);
