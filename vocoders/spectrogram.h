#pragma once
// Short-time Fourier transforms, spectrograms and mel filterbanks, numerically equal to torchaudio 0.13
// (torchaudio.functional.spectrogram / melscale_fbanks / amplitude_to_DB and the transforms
// Spectrogram, MelScale, MelSpectrogram, AmplitudeToDB).
//
// Layouts follow torchaudio: a waveform is [..., time]; a spectrogram is [..., freq, frames] with
// freq = n_fft / 2 + 1 (onesided); a mel spectrogram is [..., n_mels, frames]; a filterbank is
// [n_freqs, n_mels] (one column per mel band).
#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>

namespace a2a::dsp {

struct StftOptions {
  int64_t n_fft = 400;
  int64_t win_length = 0;  // 0: n_fft
  int64_t hop_length = 0;  // 0: win_length / 2
  bool center = true;      // pad so that frame t is centred on sample t * hop_length
  std::string pad_mode = "reflect";
  bool onesided = true;

  int64_t resolved_win_length() const { return win_length > 0 ? win_length : n_fft; }
  int64_t resolved_hop_length() const { return hop_length > 0 ? hop_length : resolved_win_length() / 2; }
  // Throws a2a::Error (input) when the sizes are inconsistent.
  void validate() const;
};

// torch.hann_window(win_length) (periodic), the window every torchaudio transform defaults to.
at::Tensor hann_window(int64_t win_length, bool periodic = true);

// Complex STFT [..., freq, frames] of a waveform [..., time]; the window has win_length samples and is
// zero-padded to n_fft in the middle, as torch.stft does.
at::Tensor stft(const at::Tensor& waveform, const StftOptions& options, const at::Tensor& window);

// Inverse of stft (overlap-add with window-square normalisation). length: the output length, or
// (frames - 1) * hop_length when absent (center = true).
at::Tensor istft(const at::Tensor& spectrum, const StftOptions& options, const at::Tensor& window,
                 std::optional<int64_t> length = std::nullopt);

struct SpectrogramOptions {
  StftOptions stft;
  int64_t pad = 0;                    // constant zero padding on both sides before the STFT
  std::optional<double> power = 2.0;  // |X|^power; absent: the complex spectrum
  bool normalized = false;            // divide by the window's L2 norm
};

// torchaudio.functional.spectrogram with a periodic Hann window: [..., time] -> [..., freq, frames].
at::Tensor spectrogram(const at::Tensor& waveform, const SpectrogramOptions& options);

enum class MelScale { Htk, Slaney };
enum class MelNorm { None, Slaney };  // Slaney: divide each triangle by its width (constant energy)

// Parse "htk" | "slaney" and "none" | "slaney"; throw a2a::Error (input) otherwise.
MelScale mel_scale_from_name(const std::string& name);
MelNorm mel_norm_from_name(const std::string& name);

double hz_to_mel(double hz, MelScale scale);
at::Tensor mel_to_hz(const at::Tensor& mels, MelScale scale);

// torchaudio.functional.melscale_fbanks: [n_freqs, n_mels].
at::Tensor melscale_fbanks(int64_t n_freqs, double f_min, double f_max, int64_t n_mels, int64_t sample_rate,
                           MelNorm norm = MelNorm::None, MelScale scale = MelScale::Htk);

struct MelSpectrogramOptions {
  int64_t sample_rate = 16000;
  SpectrogramOptions spectrogram;  // power must be set (a real spectrogram)
  int64_t n_mels = 128;
  double f_min = 0.0;
  double f_max = 0.0;  // <= 0: sample_rate / 2 (integer division, as torchaudio)
  MelNorm norm = MelNorm::None;
  MelScale scale = MelScale::Htk;

  double resolved_f_max() const { return f_max > 0.0 ? f_max : static_cast<double>(sample_rate / 2); }
  at::Tensor filterbank() const;  // [n_fft / 2 + 1, n_mels]
};

// Projects a spectrogram [..., freq, frames] onto a filterbank [freq, n_mels]: [..., n_mels, frames].
at::Tensor apply_filterbank(const at::Tensor& spectrogram, const at::Tensor& filterbank);

// torchaudio.transforms.MelSpectrogram: [..., time] -> [..., n_mels, frames].
at::Tensor mel_spectrogram(const at::Tensor& waveform, const MelSpectrogramOptions& options);

// Recovers a linear spectrogram [..., freq, frames] from a mel spectrogram [..., n_mels, frames] with
// the Moore-Penrose pseudo-inverse of the filterbank, clamped at zero (a spectrogram is not negative).
at::Tensor inverse_mel_scale(const at::Tensor& mel, const at::Tensor& filterbank);

// torchaudio.functional.amplitude_to_DB: multiplier * log10(max(x, amin)) - multiplier * db_multiplier,
// then, with top_db, clamped from below at (max - top_db). torchaudio's quirk is kept: the maximum is
// taken per item of the leading dimensions over the last three dimensions, so a 3-d input
// [channel, freq, time] shares one maximum across its channels; pass [B, 1, freq, time] for one
// maximum per spectrogram.
at::Tensor amplitude_to_db(const at::Tensor& x, double multiplier, double amin, double db_multiplier,
                           std::optional<double> top_db = std::nullopt);

// torchaudio.transforms.AmplitudeToDB: stype "power" (multiplier 10) or "magnitude" (20), ref 1,
// amin 1e-10.
at::Tensor amplitude_to_db(const at::Tensor& x, const std::string& stype, std::optional<double> top_db);

// torchaudio.functional.DB_to_amplitude: ref * (10^(0.1 x))^power.
at::Tensor db_to_amplitude(const at::Tensor& x, double ref, double power);

}  // namespace a2a::dsp
