#include "vocoders/griffin_lim.h"

#include <torch/torch.h>

#include "base/error.h"

namespace a2a::dsp {

StftOptions GriffinLimOptions::stft() const {
  StftOptions out;
  out.n_fft = n_fft;
  out.win_length = win_length;
  out.hop_length = hop_length;
  out.center = true;
  out.pad_mode = "reflect";
  out.onesided = true;
  return out;
}

void GriffinLimOptions::validate() const {
  stft().validate();
  if (n_iter < 0)
    throw_input_error("bad_griffin_lim_option", "n_iter must not be negative, got " + std::to_string(n_iter));
  if (!(momentum >= 0.0 && momentum < 1.0))
    throw_input_error("bad_griffin_lim_option",
                      "momentum must be in [0, 1) (1 and above can diverge), got " + std::to_string(momentum));
  if (!(power > 0.0))
    throw_input_error("bad_griffin_lim_option", "power must be positive, got " + std::to_string(power));
  if (length && *length < 1)
    throw_input_error("bad_griffin_lim_option", "length must be positive, got " + std::to_string(*length));
}

at::Tensor griffin_lim(const at::Tensor& magnitude, const at::Tensor& window, const GriffinLimOptions& options,
                       at::Generator* generator, const IterationCallback& on_iteration) {
  options.validate();
  const int64_t n_freqs = options.n_fft / 2 + 1;
  if (magnitude.dim() < 2 || magnitude.size(-2) != n_freqs || magnitude.size(-1) < 1)
    throw_input_error("bad_spectrogram_shape", "Griffin-Lim needs a magnitude spectrogram [..., " +
                                                   std::to_string(n_freqs) + " (n_fft/2+1), frames], got " +
                                                   c10::str(magnitude.sizes()));
  if (magnitude.is_complex())
    throw_input_error("bad_spectrogram_dtype", "Griffin-Lim needs a real magnitude spectrogram, got a complex one");
  const auto stft_options = options.stft();
  auto leading = magnitude.sizes().vec();
  leading.resize(leading.size() - 2);

  auto specgram = magnitude.reshape({-1, magnitude.size(-2), magnitude.size(-1)}).pow(1.0 / options.power);
  const auto complex_options = specgram.options().dtype(c10::toComplexType(specgram.scalar_type()));
  at::Tensor angles;
  if (options.rand_init) {
    c10::optional<at::Generator> gen;
    if (generator) gen = *generator;
    angles = at::rand(specgram.sizes(), gen, complex_options);
  } else {
    angles = torch::full(specgram.sizes(), 1, complex_options);
  }

  // The previous rebuilt spectrum, for the momentum term of the fast Griffin-Lim.
  at::Tensor tprev = torch::zeros({}, specgram.options());
  for (int64_t iteration = 0; iteration < options.n_iter; ++iteration) {
    auto inverse = istft(specgram * angles, stft_options, window, options.length);
    auto rebuilt = stft(inverse, stft_options, window);
    angles = rebuilt;
    if (options.momentum != 0.0) angles = angles - tprev.mul_(options.momentum / (1 + options.momentum));
    angles = angles.div(angles.abs().add(1e-16));
    tprev = rebuilt;
    if (on_iteration) on_iteration(iteration + 1, options.n_iter);
  }
  auto waveform = istft(specgram * angles, stft_options, window, options.length);
  leading.push_back(waveform.size(-1));
  return waveform.reshape(leading);
}

GriffinLimImpl::GriffinLimImpl(GriffinLimOptions options) : options_(std::move(options)) {
  options_.validate();
  window_ = register_buffer("window", hann_window(options_.stft().resolved_win_length()));
}

at::Tensor GriffinLimImpl::forward(const at::Tensor& magnitude, at::Generator* generator,
                                   const IterationCallback& on_iteration) {
  return griffin_lim(magnitude, window_, options_, generator, on_iteration);
}

GriffinLimVocoderImpl::GriffinLimVocoderImpl(GriffinLimOptions options, std::optional<MelSpectrogramOptions> mel) {
  if (mel && mel->spectrogram.stft.n_fft != options.n_fft)
    throw_input_error("bad_griffin_lim_option",
                      "the mel filterbank was built for n_fft=" + std::to_string(mel->spectrogram.stft.n_fft) +
                          " but Griffin-Lim uses n_fft=" + std::to_string(options.n_fft));
  griffin_lim_ = register_module("griffin_lim", GriffinLim(std::move(options)));
  if (mel) filterbank_ = register_buffer("filterbank", mel->filterbank());
}

at::Tensor GriffinLimVocoderImpl::forward(const at::Tensor& spectrogram, at::Generator* generator,
                                          const IterationCallback& on_iteration) {
  auto linear = from_mel() ? inverse_mel_scale(spectrogram, filterbank_) : spectrogram;
  return griffin_lim_->forward(linear, generator, on_iteration);
}

}  // namespace a2a::dsp
