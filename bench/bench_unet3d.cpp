// A UNet3DConditionModel step at ModelScope text-to-video-ms-1.7b's size (its config is the constructor's
// defaults) on a small but realistic video latent, with its analytic GFLOP/s next to a 2048^3 fp32 GEMM
// measured in the same run.
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "bench/unet_flops.h"
#include "diffusion/unet3d_condition.h"

namespace {

void bench_unet3d() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto gemm = a2a::bench::GemmYardstick::measure();

  const a2a::UNet3DConditionOptions options;  // text-to-video-ms-1.7b's unet/config.json
  a2a::UNet3DConditionModel unet(options);    // default initialisation: the timing does not depend on the values
  unet->eval();
  // Batch 2 (guidance's two halves), 4 frames of 128x128 video (16x16 latents), 77 CLIP tokens.
  const int64_t batch = 2, frames = 4, latent = 16, context_length = 77;
  const auto latents = torch::randn({batch, options.in_channels, frames, latent, latent});
  const auto text = torch::randn({batch, context_length, *options.cross_attention_dim});
  const auto timestep = at::scalar_tensor(500, at::kLong);
  const double seconds = a2a::bench::seconds_per_call([&] { unet->forward(latents, timestep, text); }, 1, 2, 1.0);

  a2a::bench::UNetCallShape shape;
  shape.levels = static_cast<int64_t>(options.block_out_channels.size());
  shape.height = shape.width = latent;
  shape.frames = frames;
  shape.context_length = context_length;
  const double flops = batch * a2a::bench::unet_flops_per_sample(*unet, shape);
  std::printf("unet3d (text-to-video-ms-1.7b size), batch %lld x %lld frames of %lldx%lld latents, %d threads\n",
              static_cast<long long>(batch), static_cast<long long>(frames), static_cast<long long>(latent),
              static_cast<long long>(latent), at::get_num_threads());
  gemm.report_step(seconds, flops);
  shape.height = 40;  // zeroscope_v2_576w: 24 frames of 576x320
  shape.width = 72;
  shape.frames = 24;
  std::printf("  (one zeroscope_v2_576w step, 2 x 24 frames of 576x320, is %.0f GFLOP analytic)\n",
              2 * a2a::bench::unet_flops_per_sample(*unet, shape) / 1e9);
}

}  // namespace

A2A_BENCH("unet3d", bench_unet3d);
