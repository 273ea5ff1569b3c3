// UNet2DConditionModel step time at Stable Diffusion 1.5's size, its arithmetic rate next to a large
// fp32 GEMM on the same machine, and what batching classifier-free guidance saves.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "bench/bench.h"
#include "diffusion/unet2d_condition.h"

namespace {

// Multiply-adds ×2 of every conv, linear and attention product of one UNet call per sample, from the
// parameter shapes: a conv costs 2·|weight|·H_out·W_out, a linear 2·|weight| per token, attention
// 4·L·S·inner (QKᵀ and PV). Norms, activations and the embedding MLPs' elementwise work are left out
// (< 1 % at these sizes).
double unet_flops_per_sample(a2a::UNet2DConditionModelImpl& unet, int64_t height, int64_t width,
                             int64_t context_length) {
  const int64_t levels = static_cast<int64_t>(unet.options().block_out_channels.size());
  double total = 0;
  for (const auto& p : unet.named_parameters()) {
    const std::string& name = p.key();
    const at::Tensor& w = p.value();
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0 || w.dim() < 2) continue;
    int64_t level = 0;
    bool per_token = true;
    auto index_after = [&](const std::string& prefix) { return std::stoll(name.substr(prefix.size())); };
    if (name.rfind("down_blocks.", 0) == 0) {
      level = index_after("down_blocks.");
      if (name.find("downsamplers") != std::string::npos) ++level;
    } else if (name.rfind("up_blocks.", 0) == 0) {
      level = levels - 1 - index_after("up_blocks.");
      if (name.find("upsamplers") != std::string::npos) --level;
    } else if (name.rfind("mid_block", 0) == 0) {
      level = levels - 1;
    } else if (name.rfind("time_embedding", 0) == 0 || name.rfind("class_embedding", 0) == 0) {
      per_token = false;
    }
    if (name.find("time_emb_proj") != std::string::npos) per_token = false;
    const double tokens = per_token ? static_cast<double>((height >> level) * (width >> level)) : 1.0;
    const bool cross_kv = name.find("attn2.to_k") != std::string::npos || name.find("attn2.to_v") != std::string::npos;
    total += 2.0 * static_cast<double>(w.numel()) * (cross_kv ? static_cast<double>(context_length) : tokens);
    if (name.find("attn1.to_q.weight") != std::string::npos) total += 4.0 * tokens * tokens * w.size(0);
    if (name.find("attn2.to_q.weight") != std::string::npos) total += 4.0 * tokens * context_length * w.size(0);
  }
  return total;
}

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
  const double flops = batch * unet_flops_per_sample(*unet, latent, latent, context_length);
  const double unet_gflops = flops / batched_s / 1e9;

  std::printf("threads: %d\n", at::get_num_threads());
  std::printf("fp32 GEMM %lldx%lldx%lld: %.3f s, %.1f GFLOP/s\n", static_cast<long long>(n), static_cast<long long>(n),
              static_cast<long long>(n), gemm_s, gemm_gflops);
  std::printf("SD1.5 UNet step, batch %lld, %lldx%lld latent, %lld context tokens: %.3f s/step\n",
              static_cast<long long>(batch), static_cast<long long>(latent), static_cast<long long>(latent),
              static_cast<long long>(context_length), batched_s);
  std::printf("  analytic cost %.1f GFLOP/step (%.1f per sample; 64x64 would be %.0f per sample)\n", flops / 1e9,
              flops / batch / 1e9, unet_flops_per_sample(*unet, 64, 64, context_length) / 1e9);
  std::printf("  achieved %.1f GFLOP/s = %.0f %% of the GEMM rate\n", unet_gflops, 100.0 * unet_gflops / gemm_gflops);
  std::printf("classifier-free guidance: one batch-2 call %.3f s vs two batch-1 calls %.3f s: speedup %.2fx\n",
              batched_s, split_s, split_s / batched_s);
}

}  // namespace

A2A_BENCH("unet", bench_unet);
