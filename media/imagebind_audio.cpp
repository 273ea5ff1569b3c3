#include "media/imagebind_audio.h"

#include <torch/torch.h>

#include <string>

#include "base/error.h"
#include "media/clip_sampler.h"
#include "media/kaldi_fbank.h"
#include "media/resample.h"

namespace a2a {

namespace {

void check_waveform(const at::Tensor& waveform) {
  if (!waveform.defined() || waveform.dim() != 2 || waveform.size(0) == 0 || !waveform.is_floating_point()) {
    throw_input_error("bad_waveform_shape",
                      "ImageBind audio needs a floating-point waveform [channels, samples], got " +
                          (waveform.defined() ? c10::str(waveform.sizes()) : std::string("none")));
  }
}

// waveform2melspec after its mean subtraction.
at::Tensor melspec_of_centered(const at::Tensor& centered, int64_t sample_rate, int64_t num_mel_bins,
                               int64_t target_length) {
  if (num_mel_bins <= 0 || target_length <= 0) {
    throw_input_error("bad_option", "ImageBind audio: num_mel_bins and target_length must be positive");
  }
  dsp::KaldiFbankOptions fbank;
  fbank.htk_compat = true;
  fbank.sample_frequency = static_cast<double>(sample_rate);
  fbank.use_energy = false;
  fbank.window_type = "hanning";
  fbank.num_mel_bins = num_mel_bins;
  fbank.dither = 0.0;
  fbank.frame_length = 25.0;
  fbank.frame_shift = 10.0;
  auto features = dsp::kaldi_fbank(centered, fbank).transpose(0, 1);  // [mel, frames]
  const int64_t frames = features.size(1);
  features = frames < target_length ? torch::constant_pad_nd(features, {0, target_length - frames}, 0)
                                    : features.slice(1, 0, target_length);
  return features.unsqueeze(0).contiguous();
}

}  // namespace

at::Tensor imagebind_waveform2melspec(const at::Tensor& waveform, int64_t sample_rate, int64_t num_mel_bins,
                                      int64_t target_length) {
  check_waveform(waveform);
  return melspec_of_centered(waveform - waveform.mean(), sample_rate, num_mel_bins, target_length);
}

at::Tensor imagebind_normalize_fbank(const at::Tensor& fbank, double mean, double std) {
  if (!(std != 0.0)) throw_input_error("bad_option", "ImageBind audio: the normalisation std must not be zero");
  // torchvision's Normalize: the statistics as tensors of the input's dtype, then sub and div.
  auto m = torch::tensor(mean, fbank.options());
  auto s = torch::tensor(std, fbank.options());
  return (fbank - m) / s;
}

at::Tensor imagebind_audio_clips(const at::Tensor& waveform, int64_t sample_rate,
                                 const ImageBindAudioOptions& options) {
  check_waveform(waveform);
  if (sample_rate <= 0 || options.sample_rate <= 0) {
    throw_input_error("bad_option", "ImageBind audio: sample rates must be positive");
  }
  at::Tensor signal = waveform.to(at::kFloat);
  signal =
      sample_rate == options.sample_rate ? signal.clone() : dsp::resample(signal, sample_rate, options.sample_rate);
  ConstantClipsSampling sampling;
  sampling.clip_duration = options.clip_duration;
  sampling.clips_per_video = options.clips_per_video;
  std::vector<at::Tensor> clips;
  for (const auto& [begin, end] : constant_clip_sample_ranges(signal.size(1), options.sample_rate, sampling)) {
    // The reference subtracts each clip's mean in place on a view of the whole waveform, so clips that
    // overlap see the samples an earlier clip already shifted; the same view arithmetic is kept here.
    auto clip = signal.slice(1, std::min(begin, signal.size(1)), std::min(end, signal.size(1)));
    clip.sub_(clip.mean());
    auto fbank = melspec_of_centered(clip, options.sample_rate, options.num_mel_bins, options.target_length);
    clips.push_back(imagebind_normalize_fbank(fbank, options.mean, options.std));
  }
  return torch::stack(clips);
}

}  // namespace a2a
