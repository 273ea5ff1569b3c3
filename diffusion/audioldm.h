#pragma once
// How AudioLDM (diffusers 0.29.2 AudioLDMPipeline) relates seconds of audio, mel frames, latent rows and
// waveform samples, and where the parts of an AudioLDM pipeline folder live. Shared by the audio
// diffusion and vocoder stages, independent of the pipeline.
#include <cstdint>
#include <string>
#include <vector>

namespace a2a {

struct AudioLDMGeometry {
  int64_t mel_bins = 64;          // the vocoder's model_in_dim: the mel image's width
  int64_t hop_length = 160;       // waveform samples per mel frame: prod(vocoder upsample_rates)
  int64_t sampling_rate = 16000;  // the vocoder's sampling_rate
  int64_t vae_scale_factor = 4;   // 2^(len(vae block_out_channels) - 1)

  // diffusers' vocoder_upsample_factor: seconds per mel frame (0.01 for AudioLDM).
  double seconds_per_frame() const;
  // The duration diffusers takes when none is given: unet sample_size · vae_scale_factor frames.
  double default_duration(int64_t unet_sample_size) const;
  // int(seconds / seconds_per_frame), rounded up to a multiple of vae_scale_factor (5.12 s -> 512).
  int64_t mel_frames(double seconds) const;
  // int(seconds · sampling_rate): the waveform is cut to this length after vocoding.
  int64_t waveform_samples(double seconds) const;
  // [batch, channels, mel_frames / f, mel_bins / f]: the shape of the initial noise.
  std::vector<int64_t> latent_shape(int64_t batch, int64_t latent_channels, double seconds) const;
};

// A diffusers component folder given either the pipeline folder (then root/component when it has a
// config.json) or the component folder itself.
std::string pipeline_component_folder(const std::string& root, const std::string& component);

// `path` when it is a pipeline folder (model_index.json or the named component folder), else empty.
std::string pipeline_root_of(const std::string& path, const std::string& component);

// Reads the geometry from an AudioLDM pipeline folder's vocoder/config.json and vae/config.json;
// fields whose file is absent keep the AudioLDM values above.
AudioLDMGeometry read_audioldm_geometry(const std::string& pipeline_root);

}  // namespace a2a
