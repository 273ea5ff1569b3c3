#include "media/kaldi_fbank.h"

#include <torch/torch.h>

#include <cmath>

#include "base/error.h"

namespace a2a::dsp {
namespace {

using torch::indexing::None;
using torch::indexing::Slice;

// std::numeric_limits<float>::epsilon(), Kaldi's floor before every log.
at::Tensor epsilon_like(const at::Tensor& t) {
  return torch::tensor(std::numeric_limits<float>::epsilon(), t.options());
}

int64_t next_power_of_two(int64_t x) {
  int64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

double mel_scale(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

// [frames, window_size] views of the signal, one row per frame.
at::Tensor frames_of(const at::Tensor& waveform, int64_t window_size, int64_t window_shift, bool snip_edges) {
  const int64_t num_samples = waveform.size(0);
  at::Tensor signal = waveform.contiguous();
  int64_t frames = 0;
  if (snip_edges) {
    if (num_samples < window_size) return torch::empty({0, 0}, waveform.options());
    frames = 1 + (num_samples - window_size) / window_shift;
  } else {
    // Kaldi reflects around the edge sample including it: [2, 1, 0, 0, 1, 2], not torch's [2, 1, 0, 1, 2].
    auto reversed = torch::flip(signal, {0});
    frames = (num_samples + window_shift / 2) / window_shift;
    const int64_t pad = window_size / 2 - window_shift / 2;
    if (pad > 0) {
      signal = torch::cat({reversed.slice(0, num_samples - pad), signal, reversed});
    } else {
      signal = torch::cat({signal.slice(0, -pad), reversed});
    }
  }
  return signal.as_strided({frames, window_size}, {window_shift, 1});
}

at::Tensor feature_window(const std::string& type, int64_t size, double blackman_coeff,
                          const torch::TensorOptions& options) {
  if (type == "hanning") return torch::hann_window(size, /*periodic=*/false, options);
  if (type == "hamming") return torch::hamming_window(size, /*periodic=*/false, 0.54, 0.46, options);
  if (type == "povey") return torch::hann_window(size, /*periodic=*/false, options).pow(0.85);  // Hann, zero at edges
  if (type == "rectangular") return torch::ones({size}, options);
  if (type == "blackman") {
    // Kaldi's generalised Blackman, not torch.blackman_window's coefficients.
    const double a = 2 * M_PI / static_cast<double>(size - 1);
    auto n = torch::arange(size, options);
    return blackman_coeff - 0.5 * torch::cos(a * n) + (0.5 - blackman_coeff) * torch::cos(2 * a * n);
  }
  throw_input_error("bad_window_type",
                    "window_type must be hamming, hanning, povey, rectangular or blackman, got '" + type + "'");
}

at::Tensor log_energy(const at::Tensor& frames, double energy_floor) {
  auto energy = torch::max(frames.pow(2).sum(1), epsilon_like(frames)).log();
  if (energy_floor == 0.0) return energy;
  return torch::max(energy, torch::tensor(std::log(energy_floor), frames.options()));
}

}  // namespace

at::Tensor kaldi_mel_banks(int64_t num_bins, int64_t padded_window_size, double sample_frequency, double low_freq,
                           double high_freq) {
  if (num_bins <= 3)
    throw_input_error("bad_fbank_option", "num_mel_bins must be at least 4, got " + std::to_string(num_bins));
  const double num_fft_bins = static_cast<double>(padded_window_size / 2);
  const double nyquist = 0.5 * sample_frequency;
  if (high_freq <= 0.0) high_freq += nyquist;
  if (!(low_freq >= 0.0 && low_freq < nyquist && high_freq > 0.0 && high_freq <= nyquist && low_freq < high_freq))
    throw_input_error("bad_fbank_option",
                      "need 0 <= low_freq < high_freq <= nyquist, got low_freq=" + std::to_string(low_freq) +
                          ", high_freq=" + std::to_string(high_freq) + ", nyquist=" + std::to_string(nyquist));
  const double fft_bin_width = sample_frequency / static_cast<double>(padded_window_size);
  const double mel_low = mel_scale(low_freq);
  const double mel_high = mel_scale(high_freq);
  // num_bins + 1 intervals: the outer triangles spread past the first and last centres.
  const double mel_delta = (mel_high - mel_low) / static_cast<double>(num_bins + 1);

  auto bin = torch::arange(num_bins, torch::kLong).unsqueeze(1);
  auto left_mel = mel_low + bin * mel_delta;
  auto center_mel = mel_low + (bin + 1.0) * mel_delta;
  auto right_mel = mel_low + (bin + 2.0) * mel_delta;
  auto fft_freqs = fft_bin_width * torch::arange(num_fft_bins, torch::kFloat);
  auto mel = (1127.0 * (1.0 + fft_freqs / 700.0).log()).unsqueeze(0);
  auto up_slope = (mel - left_mel) / (center_mel - left_mel);
  auto down_slope = (right_mel - mel) / (right_mel - center_mel);
  return torch::max(torch::zeros({1}), torch::min(up_slope, down_slope));
}

at::Tensor kaldi_fbank(const at::Tensor& waveform, const KaldiFbankOptions& options, at::Generator* generator) {
  if (waveform.dim() != 2 || !waveform.is_floating_point())
    throw_input_error("bad_waveform_shape", "Kaldi fbank needs a floating-point waveform [channels, samples], got " +
                                                c10::str(waveform.sizes()) + " " +
                                                std::string(c10::toString(waveform.scalar_type())));
  const int64_t channel = std::max<int64_t>(options.channel, 0);
  if (channel >= waveform.size(0))
    throw_input_error("bad_fbank_option", "channel " + std::to_string(channel) + " does not exist in a waveform with " +
                                              std::to_string(waveform.size(0)) + " channel(s)");
  auto signal = waveform[channel];
  const auto window_shift = static_cast<int64_t>(options.sample_frequency * options.frame_shift * 0.001);
  const auto window_size = static_cast<int64_t>(options.sample_frequency * options.frame_length * 0.001);
  const int64_t padded_window_size = options.round_to_power_of_two ? next_power_of_two(window_size) : window_size;
  if (window_size < 2 || window_size > signal.size(0))
    throw_input_error("waveform_too_short", "Kaldi fbank frames of " + std::to_string(window_size) +
                                                " samples need a waveform of at least that many samples, got " +
                                                std::to_string(signal.size(0)));
  if (window_shift < 1) throw_input_error("bad_fbank_option", "frame_shift gives a window shift below one sample");
  if (padded_window_size % 2 != 0)
    throw_input_error("bad_fbank_option", "the padded window size " + std::to_string(padded_window_size) +
                                              " must be even: use round_to_power_of_two or change frame_length");
  if (!(options.preemphasis_coefficient >= 0.0 && options.preemphasis_coefficient <= 1.0))
    throw_input_error("bad_fbank_option", "preemphasis_coefficient must be in [0, 1]");
  if (!(options.sample_frequency > 0.0)) throw_input_error("bad_fbank_option", "sample_frequency must be positive");
  if (static_cast<double>(signal.size(0)) < options.min_duration * options.sample_frequency)
    return torch::empty({0}, waveform.options());

  auto frames = frames_of(signal, window_size, window_shift, options.snip_edges);
  if (options.dither != 0.0) {
    c10::optional<at::Generator> gen;
    if (generator) gen = *generator;
    frames = frames + at::randn(frames.sizes(), gen, frames.options()) * options.dither;
  }
  if (options.remove_dc_offset) frames = frames - frames.mean(1).unsqueeze(1);
  at::Tensor energy;
  if (options.raw_energy) energy = log_energy(frames, options.energy_floor);
  if (options.preemphasis_coefficient != 0.0) {
    // x[j] -= coeff * x[max(0, j - 1)]
    auto previous = torch::cat({frames.slice(1, 0, 1), frames.slice(1, 0, -1)}, 1);
    frames = frames - options.preemphasis_coefficient * previous;
  }
  frames =
      frames * feature_window(options.window_type, window_size, options.blackman_coeff, frames.options()).unsqueeze(0);
  if (padded_window_size != window_size)
    frames = torch::constant_pad_nd(frames, {0, padded_window_size - window_size}, 0);
  if (!options.raw_energy) energy = log_energy(frames, options.energy_floor);

  auto spectrum = torch::fft_rfft(frames).abs();
  if (options.use_power) spectrum = spectrum.pow(2.0);
  auto banks = kaldi_mel_banks(options.num_mel_bins, padded_window_size, options.sample_frequency, options.low_freq,
                               options.high_freq)
                   .to(frames.device(), frames.scalar_type());
  banks = torch::constant_pad_nd(banks, {0, 1}, 0);  // the Nyquist bin gets no weight
  auto features = torch::mm(spectrum, banks.t());
  if (options.use_log_fbank) features = torch::max(features, epsilon_like(features)).log();
  if (options.use_energy) {
    auto column = energy.unsqueeze(1);
    features = options.htk_compat ? torch::cat({features, column}, 1) : torch::cat({column, features}, 1);
  }
  if (options.subtract_mean) features = features - features.mean(0).unsqueeze(0);
  return features;
}

}  // namespace a2a::dsp
