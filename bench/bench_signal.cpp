// Signal processing throughput on 10 s of 16 kHz audio, as real-time factors (audio seconds per
// compute second), and Griffin-Lim's cost per iteration relative to one mel spectrogram.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>

#include "bench/bench.h"
#include "media/kaldi_fbank.h"
#include "media/resample.h"
#include "vocoders/griffin_lim.h"
#include "vocoders/spectrogram.h"

namespace {

void bench_signal() {
  const double seconds = 10.0;
  const int64_t rate = 16000;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto wave = at::rand({1, static_cast<int64_t>(seconds * rate)}, gen) * 2 - 1;
  auto wave_44k = at::rand({1, static_cast<int64_t>(seconds * 44100)}, gen) * 2 - 1;

  a2a::dsp::MelSpectrogramOptions mel;
  mel.sample_rate = rate;
  mel.spectrogram.stft.n_fft = 1024;
  mel.spectrogram.stft.hop_length = 256;
  mel.n_mels = 80;
  a2a::dsp::KaldiFbankOptions fbank;
  fbank.num_mel_bins = 128;
  fbank.window_type = "hanning";
  fbank.htk_compat = true;
  a2a::dsp::GriffinLimOptions gl;
  gl.n_fft = 1024;
  gl.hop_length = 256;
  gl.n_iter = 16;
  gl.rand_init = false;
  a2a::dsp::GriffinLimVocoder vocoder(gl, mel);
  auto mel_spec = a2a::dsp::mel_spectrogram(wave, mel);

  torch::NoGradGuard no_grad;
  const double t_mel = a2a::bench::seconds_per_call([&] { a2a::dsp::mel_spectrogram(wave, mel); });
  const double t_fbank = a2a::bench::seconds_per_call([&] { a2a::dsp::kaldi_fbank(wave, fbank); });
  const double t_resample = a2a::bench::seconds_per_call([&] { a2a::dsp::resample(wave_44k, 44100, 16000); });
  const double t_gl = a2a::bench::seconds_per_call([&] { vocoder->forward(mel_spec); }, 0, 1, 0.0);

  std::printf("signal: 10 s of audio, %d intra-op threads; real-time factor = audio s / compute s\n",
              at::get_num_threads());
  std::printf("  mel_spectrogram n_fft=1024 hop=256 80 mels  %8.2f ms  RTF %8.1f\n", t_mel * 1e3, seconds / t_mel);
  std::printf("  kaldi_fbank 128 bins (ImageBind)           %8.2f ms  RTF %8.1f\n", t_fbank * 1e3, seconds / t_fbank);
  std::printf("  resample 44100 -> 16000                    %8.2f ms  RTF %8.1f\n", t_resample * 1e3,
              seconds / t_resample);
  std::printf(
      "  griffin_lim from mel, %lld iterations       %8.2f ms  RTF %8.1f  (%.1f mel spectrograms per iteration)\n",
      static_cast<long long>(gl.n_iter), t_gl * 1e3, seconds / t_gl, t_gl / static_cast<double>(gl.n_iter) / t_mel);
}

}  // namespace

A2A_BENCH("signal", bench_signal);
