// Vocoder throughput as real-time factors (seconds of audio per second of compute) on the same mel
// spectrogram: HiFi-GAN at the tiny preset's width and at AudioLDM's real vocoder shape (random weights),
// and Griffin-Lim at AudioLDM's STFT settings for comparison.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "vocoders/griffin_lim.h"
#include "vocoders/hifigan.h"

namespace {

// AudioLDM-s-full-v2's vocoder/config.json.
a2a::SpeechT5HifiGanConfig audioldm_vocoder_config() {
  return a2a::SpeechT5HifiGanConfig::from_json({{"model_in_dim", 64},
                                                {"sampling_rate", 16000},
                                                {"upsample_initial_channel", 1024},
                                                {"upsample_rates", {5, 4, 2, 2, 2}},
                                                {"upsample_kernel_sizes", {16, 16, 8, 4, 4}},
                                                {"resblock_kernel_sizes", {3, 7, 11}},
                                                {"resblock_dilation_sizes", {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}}},
                                                {"leaky_relu_slope", 0.1},
                                                {"normalize_before", false}});
}

// The hifigan stage's tiny preset, built as a pipeline would build it.
std::shared_ptr<a2a::Stage> tiny_hifigan_stage() {
  const a2a::StageInfo* info = a2a::StageRegistry::global().find("hifigan");
  a2a::Json params = a2a::Json::object();
  for (const auto& spec : info->params) params[spec.name] = spec.default_value;
  std::shared_ptr<a2a::Stage> stage = info->create();
  stage->configure(params, a2a::ConfigureContext{});
  return stage;
}

void bench_vocoder() {
  torch::NoGradGuard no_grad;
  const int64_t frames = 100;  // 1 s at AudioLDM's 10 ms frames
  auto generator = at::detail::createCPUGenerator(0);
  at::Tensor mel = at::randn({1, frames, 64}, generator) - 4.0;

  auto tiny_stage = tiny_hifigan_stage();
  auto& tiny = dynamic_cast<a2a::SpeechT5HifiGanImpl&>(*tiny_stage->module());
  a2a::SpeechT5HifiGan real(audioldm_vocoder_config());
  a2a::initialize_seeded_weights(*real, 0);
  real->eval();

  a2a::dsp::MelSpectrogramOptions mel_options;
  mel_options.sample_rate = 16000;
  mel_options.spectrogram.stft.n_fft = 1024;
  mel_options.spectrogram.stft.hop_length = 160;
  mel_options.spectrogram.power = 1.0;
  mel_options.n_mels = 64;
  mel_options.f_max = 8000.0;
  mel_options.scale = a2a::dsp::MelScale::Slaney;
  mel_options.norm = a2a::dsp::MelNorm::Slaney;
  a2a::dsp::GriffinLimOptions gl;
  gl.n_fft = 1024;
  gl.hop_length = 160;
  gl.power = 1.0;
  gl.n_iter = 32;
  gl.rand_init = false;
  a2a::dsp::GriffinLimVocoder griffin_lim(gl, mel_options);
  at::Tensor magnitude = mel.exp().transpose(1, 2).contiguous();

  const double seconds_tiny = static_cast<double>(frames * tiny.config().hop_length()) / tiny.config().sampling_rate;
  const double seconds_real = static_cast<double>(frames * real->config().hop_length()) / real->config().sampling_rate;
  const double t_tiny = a2a::bench::seconds_per_call([&] { tiny.forward(mel); });
  const double t_real = a2a::bench::seconds_per_call([&] { real->forward(mel); }, 1, 2, 0.0);
  const double t_gl = a2a::bench::seconds_per_call([&] { griffin_lim->forward(magnitude); }, 0, 1, 0.0);

  std::printf("vocoder: %lld mel frames of 64 bins -> 16 kHz, %d intra-op threads; RTF = audio s / compute s\n",
              static_cast<long long>(frames), at::get_num_threads());
  std::printf("  hifigan tiny preset (64 ch)          %9.2f ms  RTF %8.2f\n", t_tiny * 1e3, seconds_tiny / t_tiny);
  std::printf("  hifigan AudioLDM shape (1024 ch)     %9.2f ms  RTF %8.2f\n", t_real * 1e3, seconds_real / t_real);
  std::printf("  griffin_lim 32 iterations (n_fft 1024, hop 160)  %9.2f ms  RTF %8.2f\n", t_gl * 1e3,
              seconds_real / t_gl);
  std::printf("  AudioLDM-shape HiFi-GAN costs %.1fx the tiny preset, %.2fx Griffin-Lim\n", t_real / t_tiny,
              t_real / t_gl);
}

}  // namespace

A2A_BENCH("vocoder", bench_vocoder);
