#pragma once
// Band-limited resampling, numerically equal to torchaudio 0.13's torchaudio.functional.resample
// (windowed-sinc polyphase filter applied as one strided conv1d).
#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>

namespace a2a::dsp {

enum class ResamplingMethod { SincInterpHann, SincInterpKaiser };

// Defaults are torchaudio's.
struct ResampleOptions {
  int64_t lowpass_filter_width = 6;  // zero crossings of the sinc kept on each side
  double rolloff = 0.99;             // cutoff as a fraction of the lower Nyquist frequency
  ResamplingMethod method = ResamplingMethod::SincInterpHann;
  std::optional<double> beta;  // Kaiser window shape; default 14.769656459379492
};

struct ResampleKernel {
  at::Tensor weights;  // [new_freq / gcd, 1, 2 * width + orig_freq / gcd]
  int64_t width = 0;   // input samples of padding on the left
};

// The polyphase filter bank for orig_freq -> new_freq (both in Hz, positive integers), in `dtype`.
ResampleKernel sinc_resample_kernel(int64_t orig_freq, int64_t new_freq, const ResampleOptions& options,
                                    at::ScalarType dtype);

// Resamples the last dimension of a floating-point waveform [..., time] from orig_freq to new_freq.
// The output has ceil(new_freq * time / orig_freq) samples. Equal rates return the input.
at::Tensor resample(const at::Tensor& waveform, int64_t orig_freq, int64_t new_freq,
                    const ResampleOptions& options = {});

}  // namespace a2a::dsp
