#include "media/resample.h"

#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "base/error.h"

namespace a2a::dsp {
namespace {

void check_rates(int64_t orig_freq, int64_t new_freq) {
  if (orig_freq < 1 || new_freq < 1)
    throw_input_error("bad_sample_rate", "resampling needs positive integer sample rates, got " +
                                             std::to_string(orig_freq) + " -> " + std::to_string(new_freq));
}

}  // namespace

ResampleKernel sinc_resample_kernel(int64_t orig_freq, int64_t new_freq, const ResampleOptions& options,
                                    at::ScalarType dtype) {
  check_rates(orig_freq, new_freq);
  if (options.lowpass_filter_width < 1)
    throw_input_error("bad_resample_option",
                      "lowpass_filter_width must be positive, got " + std::to_string(options.lowpass_filter_width));
  if (!(options.rolloff > 0.0 && options.rolloff <= 1.0))
    throw_input_error("bad_resample_option", "rolloff must be in (0, 1], got " + std::to_string(options.rolloff));
  const int64_t gcd = std::gcd(orig_freq, new_freq);
  const int64_t orig = orig_freq / gcd;
  const int64_t target = new_freq / gcd;
  const double lowpass_width = static_cast<double>(options.lowpass_filter_width);

  // Anti-aliasing cutoff below the lower of the two Nyquist frequencies (also needed when upsampling:
  // the zero-padded edges would otherwise add high frequencies).
  const double base_freq = static_cast<double>(std::min(orig, target)) * options.rolloff;
  const auto width = static_cast<int64_t>(std::ceil(lowpass_width * static_cast<double>(orig) / base_freq));

  // y[j] = sum_i x[i] sinc(pi * orig * (i / orig - j / target)); output phase j uses filter row j and the
  // filters repeat every `target` outputs with the input shifted by `orig`: a conv1d with stride orig.
  const auto tensor_options = torch::TensorOptions().dtype(dtype);
  auto idx =
      torch::arange(-width, width + orig, tensor_options).index({torch::indexing::None, torch::indexing::None}) / orig;
  auto t = torch::arange(0, -target, -1, tensor_options)
                   .index({torch::indexing::Slice(), torch::indexing::None, torch::indexing::None}) /
               target +
           idx;
  t = t * base_freq;
  t = t.clamp_(-lowpass_width, lowpass_width);

  at::Tensor window;
  if (options.method == ResamplingMethod::SincInterpHann) {
    window = torch::cos(t * M_PI / lowpass_width / 2).pow(2);
  } else {
    const double beta = options.beta.value_or(14.769656459379492);
    auto beta_tensor = torch::tensor(beta, torch::TensorOptions().dtype(torch::kFloat));
    window = torch::i0(beta_tensor * torch::sqrt(1 - (t / lowpass_width).pow(2))) / torch::i0(beta_tensor);
  }
  t = t * M_PI;
  const double scale = base_freq / static_cast<double>(orig);
  auto kernels = torch::where(t == 0, torch::tensor(1.0).to(t), t.sin() / t);
  kernels = kernels * (window * scale);
  return {kernels, width};
}

at::Tensor resample(const at::Tensor& waveform, int64_t orig_freq, int64_t new_freq, const ResampleOptions& options) {
  check_rates(orig_freq, new_freq);
  if (!waveform.is_floating_point())
    throw_input_error("bad_waveform_dtype", "resampling needs a floating-point waveform, got " +
                                                std::string(c10::toString(waveform.scalar_type())));
  if (waveform.dim() < 1) throw_input_error("bad_waveform_shape", "resampling needs a waveform [..., time]");
  if (orig_freq == new_freq) return waveform;

  const int64_t gcd = std::gcd(orig_freq, new_freq);
  const int64_t orig = orig_freq / gcd;
  const int64_t target = new_freq / gcd;
  auto kernel = sinc_resample_kernel(orig_freq, new_freq, options, waveform.scalar_type());

  auto shape = waveform.sizes().vec();
  const int64_t length = shape.back();
  auto flat = waveform.reshape({-1, length});
  const int64_t num_wavs = flat.size(0);
  auto padded = torch::constant_pad_nd(flat, {kernel.width, kernel.width + orig}, 0);
  auto resampled = torch::conv1d(padded.unsqueeze(1), kernel.weights.to(flat.device()), {}, orig);
  resampled = resampled.transpose(1, 2).reshape({num_wavs, -1});
  const auto target_length = static_cast<int64_t>(
      std::ceil(static_cast<double>(target) * static_cast<double>(length) / static_cast<double>(orig)));
  resampled = resampled.slice(-1, 0, target_length);
  shape.back() = resampled.size(-1);
  return resampled.reshape(shape);
}

}  // namespace a2a::dsp
