#pragma once
// Griffin-Lim phase reconstruction with the "fast Griffin-Lim" momentum, numerically equal to
// torchaudio 0.13 (torchaudio.functional.griffinlim / transforms.GriffinLim).
//
// Input: a magnitude spectrogram |X|^power [..., n_fft / 2 + 1, frames]. Output: a waveform [..., time]
// with time = length, or (frames - 1) * hop_length.
//
// GriffinLimVocoder also accepts a mel spectrogram [..., n_mels, frames]: it first maps it back to a
// linear spectrogram through the pseudo-inverse of the mel filterbank (vocoders/spectrogram.h).
#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <optional>

#include "vocoders/spectrogram.h"

namespace a2a::dsp {

// Defaults are torchaudio.transforms.GriffinLim's.
struct GriffinLimOptions {
  int64_t n_fft = 400;
  int64_t n_iter = 32;
  int64_t win_length = 0;  // 0: n_fft
  int64_t hop_length = 0;  // 0: win_length / 2
  double power = 2.0;      // the exponent the input spectrogram was raised to
  double momentum = 0.99;  // 0 recovers plain Griffin-Lim; must be in [0, 1)
  std::optional<int64_t> length;
  bool rand_init = true;  // random initial phase (needs a generator for determinism), else zero phase

  StftOptions stft() const;
  void validate() const;
};

// Called after each iteration with (iterations done, n_iter); may throw to stop early.
using IterationCallback = std::function<void(int64_t done, int64_t total)>;

// torchaudio.functional.griffinlim. generator: the source of the random initial phase (rand_init).
at::Tensor griffin_lim(const at::Tensor& magnitude, const at::Tensor& window, const GriffinLimOptions& options,
                       at::Generator* generator = nullptr, const IterationCallback& on_iteration = {});

// The vocoder as a module: it owns the analysis window and, for mel input, the filterbank.
class GriffinLimImpl : public torch::nn::Module {
 public:
  explicit GriffinLimImpl(GriffinLimOptions options);

  // A linear magnitude spectrogram |X|^power [..., n_fft / 2 + 1, frames] -> waveform [..., time].
  at::Tensor forward(const at::Tensor& magnitude, at::Generator* generator = nullptr,
                     const IterationCallback& on_iteration = {});

  const GriffinLimOptions& options() const { return options_; }
  const at::Tensor& window() const { return window_; }

 private:
  GriffinLimOptions options_;
  at::Tensor window_;
};
TORCH_MODULE(GriffinLim);

// Griffin-Lim behind an optional inverse mel filterbank.
class GriffinLimVocoderImpl : public torch::nn::Module {
 public:
  // mel: the filterbank settings the mel spectrogram was made with; absent for linear input.
  GriffinLimVocoderImpl(GriffinLimOptions options, std::optional<MelSpectrogramOptions> mel);

  // [..., n_mels or n_fft / 2 + 1, frames] -> waveform [..., time].
  at::Tensor forward(const at::Tensor& spectrogram, at::Generator* generator = nullptr,
                     const IterationCallback& on_iteration = {});

  bool from_mel() const { return filterbank_.defined(); }
  const at::Tensor& filterbank() const { return filterbank_; }  // [n_freqs, n_mels] or undefined
  GriffinLim griffin_lim() const { return griffin_lim_; }

 private:
  GriffinLim griffin_lim_{nullptr};
  at::Tensor filterbank_;
};
TORCH_MODULE(GriffinLimVocoder);

}  // namespace a2a::dsp
