// ImageBind at a tiny size (the parity fixtures' widths): forward time of the vision, audio and text
// branches, and the audio front end's cost per second of audio, each also as a multiple of one 1024^3
// fp32 GEMM measured in the same run.
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "encoders/imagebind_model.h"
#include "media/imagebind_audio.h"
#include "nn/seeded_init.h"

namespace {

a2a::ImageBindOptions tiny_imagebind_options() {
  a2a::ImageBindOptions o;
  o.out_embed_dim = 24;
  o.vision_embed_dim = o.audio_embed_dim = o.text_embed_dim = 32;
  o.vision_num_blocks = o.audio_num_blocks = o.text_num_blocks = 2;
  o.vision_num_heads = o.audio_num_heads = o.text_num_heads = 4;
  o.text_vocab_size = 256;
  o.modalities = {"vision", "audio", "text"};
  return o;
}

void bench_imagebind() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const double gemm = a2a::bench::gemm_seconds(1024);

  a2a::ImageBindModel model(tiny_imagebind_options());
  a2a::initialize_seeded_weights(*model, 1);
  model->eval();
  const auto& o = model->options();
  auto image = torch::randn({1, 3, o.image_size, o.image_size});
  auto fbank = torch::randn({1, 3, 1, o.audio_num_mel_bins, o.audio_target_len});
  auto ids = torch::randint(1, o.text_vocab_size - 1, {1, o.text_context_length}, torch::kLong);
  ids[0][10] = o.text_vocab_size - 1;
  const double vision = a2a::bench::seconds_per_call([&] { model->embed("vision", image); });
  const double audio = a2a::bench::seconds_per_call([&] { model->embed("audio", fbank); });
  const double text = a2a::bench::seconds_per_call([&] { model->embed("text", ids); });

  const double seconds = 10.0;
  auto wave_16k = torch::randn({1, static_cast<int64_t>(seconds * 16000)}) * 0.1;
  auto wave_44k = torch::randn({1, static_cast<int64_t>(seconds * 44100)}) * 0.1;
  const double front_16k = a2a::bench::seconds_per_call([&] { a2a::imagebind_audio_clips(wave_16k, 16000); });
  const double front_44k = a2a::bench::seconds_per_call([&] { a2a::imagebind_audio_clips(wave_44k, 44100); });

  std::printf("imagebind (tiny: width 32, 2 blocks, 4 heads), %d intra-op threads; GEMM 1024^3 fp32 %.2f ms\n",
              at::get_num_threads(), gemm * 1e3);
  std::printf("  vision, 1 image 224x224 (257 tokens)      %8.2f ms  %6.2f GEMMs\n", vision * 1e3, vision / gemm);
  std::printf("  audio, 3 clips of 128x204 (229 tokens)    %8.2f ms  %6.2f GEMMs\n", audio * 1e3, audio / gemm);
  std::printf("  text, 77 tokens                           %8.2f ms  %6.2f GEMMs\n", text * 1e3, text / gemm);
  std::printf("  audio front end, 10 s at 16 kHz (3 x 2 s) %8.2f ms per audio second  %6.3f GEMMs\n",
              front_16k / seconds * 1e3, front_16k / seconds / gemm);
  std::printf("  audio front end, 10 s at 44.1 kHz, resampled %7.2f ms per audio second  %6.3f GEMMs\n",
              front_44k / seconds * 1e3, front_44k / seconds / gemm);
}

}  // namespace

A2A_BENCH("imagebind", bench_imagebind);
