#pragma once
// ImageBind's audio front end (imagebind/data.py waveform2melspec and load_and_transform_audio_data):
// 16 kHz, clips of 2 s, Kaldi fbank of 128 mel bins per clip padded or cut to 204 frames, normalised
// with the AudioSet statistics (mean -4.268, std 9.138).
#include <ATen/Tensor.h>

#include <cstdint>

namespace a2a {

// Defaults are load_and_transform_audio_data's.
struct ImageBindAudioOptions {
  int64_t sample_rate = 16000;
  int64_t num_mel_bins = 128;
  int64_t target_length = 204;  // fbank frames per clip
  double clip_duration = 2.0;   // seconds
  int64_t clips_per_video = 3;
  double mean = -4.268;
  double std = 9.138;
};

// waveform2melspec: waveform [channels, samples] at sample_rate -> [1, num_mel_bins, target_length]. The
// mean over every sample is subtracted, then torchaudio's kaldi.fbank(htk_compat, use_energy=False,
// hanning, dither 0, 25 ms / 10 ms) of channel 0, transposed, zero-padded on the right or cut.
at::Tensor imagebind_waveform2melspec(const at::Tensor& waveform, int64_t sample_rate, int64_t num_mel_bins,
                                      int64_t target_length);

// transforms.Normalize(mean, std) on a float32 fbank: (x - mean) / std.
at::Tensor imagebind_normalize_fbank(const at::Tensor& fbank, double mean, double std);

// load_and_transform_audio_data for one decoded file: waveform [channels, samples] at sample_rate is
// resampled to options.sample_rate (torchaudio's resample), cut into clips_per_video clips
// (ConstantClipsPerVideoSampler), each clip turned into a normalised fbank: [clips, 1, mel, frames]. Stack
// files on a new first dimension to get the model's [B, clips, 1, mel, frames].
at::Tensor imagebind_audio_clips(const at::Tensor& waveform, int64_t sample_rate,
                                 const ImageBindAudioOptions& options = {});

}  // namespace a2a
