#pragma once
// Kaldi-compatible log mel filterbank features, numerically equal to torchaudio 0.13's
// torchaudio.compliance.kaldi.fbank (Kaldi's compute-fbank-feats). ImageBind's and AudioMAE's audio
// front end: fbank(waveform - mean, htk_compat=true, use_energy=false, window_type="hanning",
// num_mel_bins=128, dither=0, frame_length=25, frame_shift=10).
//
// VTLN warping (vtln_warp != 1) is not offered.
#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <string>

namespace a2a::dsp {

// Defaults are torchaudio.compliance.kaldi.fbank's (0.13).
struct KaldiFbankOptions {
  double blackman_coeff = 0.42;
  int64_t channel = -1;        // -1: expect mono and use channel 0
  double dither = 0.0;         // Gaussian dither amplitude; 0 turns it off
  double energy_floor = 1.0;   // floor on the log-energy column (0: none)
  double frame_length = 25.0;  // milliseconds
  double frame_shift = 10.0;   // milliseconds
  double high_freq = 0.0;      // <= 0: offset from Nyquist
  bool htk_compat = false;     // energy column last instead of first (with use_energy)
  double low_freq = 20.0;
  double min_duration = 0.0;  // seconds; shorter input gives an empty result
  int64_t num_mel_bins = 23;
  double preemphasis_coefficient = 0.97;
  bool raw_energy = true;  // energy before preemphasis and windowing
  bool remove_dc_offset = true;
  bool round_to_power_of_two = true;
  double sample_frequency = 16000.0;
  bool snip_edges = true;      // only frames that fit entirely; else reflect at the ends
  bool subtract_mean = false;  // subtract each feature's mean over frames
  bool use_energy = false;     // add a log-energy column
  bool use_log_fbank = true;
  bool use_power = true;              // power spectrum (else magnitude)
  std::string window_type = "povey";  // hamming | hanning | povey | rectangular | blackman
};

// Kaldi's mel filterbank [num_mel_bins, padded_window_size / 2] (the Nyquist bin excluded).
at::Tensor kaldi_mel_banks(int64_t num_bins, int64_t padded_window_size, double sample_frequency, double low_freq,
                           double high_freq);

// waveform [channels, samples] -> features [frames, num_mel_bins + use_energy]. generator: the dither
// noise source (only used when dither != 0).
at::Tensor kaldi_fbank(const at::Tensor& waveform, const KaldiFbankOptions& options,
                       at::Generator* generator = nullptr);

}  // namespace a2a::dsp
