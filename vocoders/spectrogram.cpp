#include "vocoders/spectrogram.h"

#include <torch/torch.h>

#include <cmath>

#include "base/error.h"

namespace a2a::dsp {
namespace {

std::string sizes_text(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? "," : "") + std::to_string(t.size(i));
  return out + "]";
}

// Flattens the leading dimensions: [..., time] -> [batch, time], remembering them.
std::vector<int64_t> leading_sizes(const at::Tensor& t, int64_t trailing) {
  auto sizes = t.sizes().vec();
  return std::vector<int64_t>(sizes.begin(), sizes.end() - trailing);
}

std::vector<int64_t> concat(std::vector<int64_t> a, at::IntArrayRef b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

void StftOptions::validate() const {
  const int64_t win = resolved_win_length();
  const int64_t hop = resolved_hop_length();
  if (n_fft < 2) throw_input_error("bad_stft_size", "n_fft must be at least 2, got " + std::to_string(n_fft));
  if (win < 1 || win > n_fft)
    throw_input_error("bad_stft_size",
                      "win_length must be in [1, n_fft=" + std::to_string(n_fft) + "], got " + std::to_string(win));
  if (hop < 1) throw_input_error("bad_stft_size", "hop_length must be positive, got " + std::to_string(hop));
  if (pad_mode != "reflect" && pad_mode != "constant" && pad_mode != "replicate" && pad_mode != "circular")
    throw_input_error("bad_stft_pad_mode",
                      "pad_mode must be reflect, constant, replicate or circular, got '" + pad_mode + "'");
}

at::Tensor hann_window(int64_t win_length, bool periodic) {
  return torch::hann_window(win_length, periodic, torch::TensorOptions().dtype(torch::kFloat));
}

at::Tensor stft(const at::Tensor& waveform, const StftOptions& options, const at::Tensor& window) {
  options.validate();
  if (waveform.dim() < 1) throw_input_error("bad_waveform_shape", "stft needs a waveform [..., time], got a scalar");
  const int64_t time = waveform.size(-1);
  if (options.center && options.pad_mode == "reflect" && time <= options.n_fft / 2)
    throw_input_error("waveform_too_short",
                      "stft with reflect padding needs more than n_fft/2 = " + std::to_string(options.n_fft / 2) +
                          " samples, got " + std::to_string(time));
  if (!options.center && time < options.n_fft)
    throw_input_error("waveform_too_short", "stft needs at least n_fft = " + std::to_string(options.n_fft) +
                                                " samples, got " + std::to_string(time));
  auto batch = leading_sizes(waveform, 1);
  auto flat = waveform.reshape({-1, time});
  auto spec = at::stft(flat, options.n_fft, options.resolved_hop_length(), options.resolved_win_length(),
                       window.to(flat.device(), flat.scalar_type()), options.center, options.pad_mode,
                       /*normalized=*/false, options.onesided, /*return_complex=*/true);
  return spec.reshape(concat(batch, spec.sizes().slice(1)));
}

at::Tensor istft(const at::Tensor& spectrum, const StftOptions& options, const at::Tensor& window,
                 std::optional<int64_t> length) {
  options.validate();
  if (spectrum.dim() < 2 || !spectrum.is_complex())
    throw_input_error("bad_spectrum_shape",
                      "istft needs a complex spectrum [..., freq, frames], got " + sizes_text(spectrum));
  auto batch = leading_sizes(spectrum, 2);
  auto flat = spectrum.reshape({-1, spectrum.size(-2), spectrum.size(-1)});
  c10::optional<int64_t> out_length;
  if (length) out_length = *length;
  auto wave = at::istft(flat, options.n_fft, options.resolved_hop_length(), options.resolved_win_length(),
                        window.to(flat.device(), c10::toRealValueType(flat.scalar_type())), options.center,
                        /*normalized=*/false, options.onesided, out_length, /*return_complex=*/false);
  return wave.reshape(concat(batch, wave.sizes().slice(1)));
}

at::Tensor spectrogram(const at::Tensor& waveform, const SpectrogramOptions& options) {
  auto input = waveform;
  if (options.pad > 0) input = torch::constant_pad_nd(input, {options.pad, options.pad}, 0);
  auto window = hann_window(options.stft.resolved_win_length()).to(input.device(), input.scalar_type());
  auto spec = stft(input, options.stft, window);
  if (options.normalized) spec = spec / window.pow(2.0).sum().sqrt();
  if (!options.power) return spec;
  if (*options.power <= 0.0)
    throw_input_error("bad_spectrogram_power", "power must be positive, got " + std::to_string(*options.power));
  if (*options.power == 1.0) return spec.abs();
  return spec.abs().pow(*options.power);
}

MelScale mel_scale_from_name(const std::string& name) {
  if (name == "htk") return MelScale::Htk;
  if (name == "slaney") return MelScale::Slaney;
  throw_input_error("bad_mel_scale", "mel_scale must be 'htk' or 'slaney', got '" + name + "'");
}

MelNorm mel_norm_from_name(const std::string& name) {
  if (name == "none" || name.empty()) return MelNorm::None;
  if (name == "slaney") return MelNorm::Slaney;
  throw_input_error("bad_mel_norm", "mel norm must be 'none' or 'slaney', got '" + name + "'");
}

// Slaney's Auditory Toolbox scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
namespace slaney {
constexpr double kHzPerMel = 200.0 / 3;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kHzPerMel;
const double kLogStep = std::log(6.4) / 27.0;
}  // namespace slaney

double hz_to_mel(double hz, MelScale scale) {
  if (scale == MelScale::Htk) return 2595.0 * std::log10(1.0 + hz / 700.0);
  if (hz >= slaney::kMinLogHz) return slaney::kMinLogMel + std::log(hz / slaney::kMinLogHz) / slaney::kLogStep;
  return hz / slaney::kHzPerMel;
}

at::Tensor mel_to_hz(const at::Tensor& mels, MelScale scale) {
  if (scale == MelScale::Htk) return 700.0 * (torch::pow(10.0, mels / 2595.0) - 1.0);
  auto linear = mels * slaney::kHzPerMel;
  auto logarithmic = slaney::kMinLogHz * torch::exp(slaney::kLogStep * (mels - slaney::kMinLogMel));
  return torch::where(mels >= slaney::kMinLogMel, logarithmic, linear);
}

at::Tensor melscale_fbanks(int64_t n_freqs, double f_min, double f_max, int64_t n_mels, int64_t sample_rate,
                           MelNorm norm, MelScale scale) {
  if (n_freqs < 2 || n_mels < 1 || sample_rate < 1)
    throw_input_error("bad_mel_filterbank",
                      "mel filterbank needs n_freqs >= 2, n_mels >= 1 and a positive "
                      "sample rate, got n_freqs=" +
                          std::to_string(n_freqs) + ", n_mels=" + std::to_string(n_mels) +
                          ", sample_rate=" + std::to_string(sample_rate));
  if (!(f_min >= 0.0 && f_min < f_max))
    throw_input_error("bad_mel_filterbank", "mel filterbank needs 0 <= f_min < f_max, got f_min=" +
                                                std::to_string(f_min) + ", f_max=" + std::to_string(f_max));
  auto all_freqs = torch::linspace(0, static_cast<double>(sample_rate / 2), n_freqs);
  auto m_pts = torch::linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2);
  auto f_pts = mel_to_hz(m_pts, scale);

  // Overlapping triangles between consecutive filter points, as torchaudio builds them.
  auto f_diff = f_pts.slice(0, 1) - f_pts.slice(0, 0, -1);    // [n_mels + 1]
  auto slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1);  // [n_freqs, n_mels + 2]
  auto down_slopes = (-1.0 * slopes.slice(1, 0, -2)) / f_diff.slice(0, 0, -1);
  auto up_slopes = slopes.slice(1, 2) / f_diff.slice(0, 1);
  auto fb = torch::max(torch::zeros({1}), torch::min(down_slopes, up_slopes));

  if (norm == MelNorm::Slaney) {
    auto enorm = 2.0 / (f_pts.slice(0, 2, n_mels + 2) - f_pts.slice(0, 0, n_mels));
    fb = fb * enorm.unsqueeze(0);
  }
  return fb;
}

at::Tensor MelSpectrogramOptions::filterbank() const {
  return melscale_fbanks(spectrogram.stft.n_fft / 2 + 1, f_min, resolved_f_max(), n_mels, sample_rate, norm, scale);
}

at::Tensor apply_filterbank(const at::Tensor& spectrogram, const at::Tensor& filterbank) {
  if (spectrogram.dim() < 2 || spectrogram.size(-2) != filterbank.size(0))
    throw_input_error("bad_spectrogram_shape", "a spectrogram [..., " + std::to_string(filterbank.size(0)) +
                                                   ", frames] was expected for this filterbank, got " +
                                                   sizes_text(spectrogram));
  return torch::matmul(spectrogram.transpose(-1, -2), filterbank.to(spectrogram.device(), spectrogram.scalar_type()))
      .transpose(-1, -2);
}

at::Tensor mel_spectrogram(const at::Tensor& waveform, const MelSpectrogramOptions& options) {
  if (!options.spectrogram.power)
    throw_input_error("bad_spectrogram_power", "a mel spectrogram needs a real spectrogram: set a power");
  return apply_filterbank(spectrogram(waveform, options.spectrogram), options.filterbank());
}

at::Tensor inverse_mel_scale(const at::Tensor& mel, const at::Tensor& filterbank) {
  if (mel.dim() < 2 || mel.size(-2) != filterbank.size(1))
    throw_input_error("bad_mel_shape", "a mel spectrogram [..., " + std::to_string(filterbank.size(1)) +
                                           ", frames] was expected for this filterbank, got " + sizes_text(mel));
  // mel = fb^T spec, so spec = pinv(fb^T) mel; computed in double for a well-conditioned inverse.
  auto inverse = torch::linalg_pinv(filterbank.to(torch::kDouble).t()).to(mel.device(), mel.scalar_type());
  return torch::matmul(inverse, mel).clamp_min(0.0);
}

at::Tensor amplitude_to_db(const at::Tensor& x, double multiplier, double amin, double db_multiplier,
                           std::optional<double> top_db) {
  auto x_db = multiplier * torch::log10(torch::clamp(x, amin));
  x_db = x_db - multiplier * db_multiplier;
  if (!top_db) return x_db;
  if (x_db.dim() < 2)
    throw_input_error("bad_spectrogram_shape",
                      "amplitude_to_db with top_db needs [..., freq, time], got " + sizes_text(x_db));
  auto shape = x_db.sizes().vec();
  const int64_t packed_channels = x_db.dim() > 2 ? shape[shape.size() - 3] : 1;
  auto packed = x_db.reshape({-1, packed_channels, shape[shape.size() - 2], shape.back()});
  auto floor = (packed.amax({-3, -2, -1}) - *top_db).view({-1, 1, 1, 1});
  return torch::max(packed, floor).reshape(shape);
}

at::Tensor amplitude_to_db(const at::Tensor& x, const std::string& stype, std::optional<double> top_db) {
  double multiplier = 0.0;
  if (stype == "power")
    multiplier = 10.0;
  else if (stype == "magnitude")
    multiplier = 20.0;
  else
    throw_input_error("bad_stype", "stype must be 'power' or 'magnitude', got '" + stype + "'");
  const double amin = 1e-10;
  const double ref_value = 1.0;
  return amplitude_to_db(x, multiplier, amin, std::log10(std::max(amin, ref_value)), top_db);
}

at::Tensor db_to_amplitude(const at::Tensor& x, double ref, double power) {
  return ref * torch::pow(torch::pow(10.0, 0.1 * x), power);
}

}  // namespace a2a::dsp
