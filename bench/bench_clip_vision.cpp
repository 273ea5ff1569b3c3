// The CLIP vision encoder at ViT-B/32 size (the CLIPVisionConfig defaults) on one 224x224 image: image_embeds
// (every layer, pooled and projected) against LLaVA's patch tokens of the penultimate layer, each also as a
// multiple of one 1024^3 fp32 GEMM measured in the same run.
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "encoders/clip_vision_model.h"
#include "nn/seeded_init.h"

namespace {

void bench_clip_vision() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const double gemm = a2a::bench::gemm_seconds(1024);

  a2a::CLIPVisionConfig config;  // ViT-B/32: 768 wide, 12 layers, 50 positions
  a2a::CLIPVisionModelWithProjection model(config);
  a2a::initialize_seeded_weights(*model, 0);
  model->eval();
  const auto pixels = torch::randn({1, 3, config.image_size, config.image_size});
  const double embeds = a2a::bench::seconds_per_call([&] { model->forward(pixels); });
  const double patches = a2a::bench::seconds_per_call([&] { model->vision_model->hidden_state(pixels, -2); });
  std::printf("clip vision (ViT-B/32 size, 224x224, %lld positions), %d intra-op threads; GEMM 1024^3 fp32 %.2f ms\n",
              static_cast<long long>(config.num_positions()), at::get_num_threads(), gemm * 1e3);
  std::printf("  image_embeds (12 layers + projection)       %8.2f ms  %6.2f GEMMs\n", embeds * 1e3, embeds / gemm);
  std::printf("  patch tokens, hidden layer -2 (11 layers)   %8.2f ms  %6.2f GEMMs  (%.2fx image_embeds)\n",
              patches * 1e3, patches / gemm, patches / embeds);
}

}  // namespace

A2A_BENCH("clip_vision", bench_clip_vision);
