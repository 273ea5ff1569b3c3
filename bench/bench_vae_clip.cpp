// AutoencoderKL decoding (untiled vs tiled) and the CLIP text encoder (full depth vs clip_skip) at
// Stable Diffusion 1.5's text-encoder size, measured side by side.
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "diffusion/autoencoder_kl.h"
#include "encoders/clip_text_model.h"

namespace {

void bench_vae_clip() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);

  // A small VAE (block_out_channels [32, 64, 64]: latent = image / 4) on a 64x64 latent.
  a2a::AutoencoderKLOptions o;
  o.block_out_channels = {32, 64, 64};
  o.down_block_types.assign(3, "DownEncoderBlock2D");
  o.up_block_types.assign(3, "UpDecoderBlock2D");
  o.norm_num_groups = 8;
  a2a::AutoencoderKL vae(o);
  auto z = torch::randn({1, 4, 64, 64});
  const double untiled = a2a::bench::seconds_per_call([&] { vae->decode(z); });
  const double tiled = a2a::bench::seconds_per_call([&] { vae->decode(z, a2a::VAETiling{32, 0.25}); });
  std::printf("vae decode 64x64 latent -> 256x256: untiled %.3f s, tiled (32, overlap 0.25) %.3f s, ratio %.2f\n",
              untiled, tiled, tiled / untiled);

  // CLIP ViT-L/14 text encoder size (SD 1.5), one 77-token prompt.
  a2a::CLIPTextConfig c;
  c.vocab_size = 49408;
  c.hidden_size = 768;
  c.intermediate_size = 3072;
  c.num_attention_heads = 12;
  c.num_hidden_layers = 12;
  c.eos_token_id = 2;
  a2a::CLIPTextModel clip(c);
  auto ids = torch::randint(0, 49406, {1, 77}, torch::kLong);
  const double full = a2a::bench::seconds_per_call([&] { clip->forward(ids); });
  const double skip = a2a::bench::seconds_per_call([&] { a2a::clip_prompt_embedding(*clip->text_model, ids, 2); });
  std::printf("clip text encoder (SD 1.5 size, 77 tokens): full %.3f s, clip_skip 2 %.3f s, ratio %.2f\n", full, skip,
              skip / full);
}

}  // namespace

A2A_BENCH("vae_clip", bench_vae_clip);
