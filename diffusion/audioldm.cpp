#include "diffusion/audioldm.h"

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "base/path_query.h"
#include "weights/hf_layout.h"

namespace a2a {

namespace fs = std::filesystem;

double AudioLDMGeometry::seconds_per_frame() const {
  return static_cast<double>(hop_length) / static_cast<double>(sampling_rate);
}

double AudioLDMGeometry::default_duration(int64_t unet_sample_size) const {
  return static_cast<double>(unet_sample_size * vae_scale_factor) * seconds_per_frame();
}

int64_t AudioLDMGeometry::mel_frames(double seconds) const {
  if (!(seconds > 0) || !std::isfinite(seconds)) {
    throw_input_error("bad_duration",
                      "audio duration must be a positive number of seconds, got " + std::to_string(seconds));
  }
  // The same float64 arithmetic as the pipeline: int(audio_length_in_s / vocoder_upsample_factor).
  auto frames = static_cast<int64_t>(seconds / seconds_per_frame());
  if (frames % vae_scale_factor != 0) frames = (frames / vae_scale_factor + 1) * vae_scale_factor;
  if (frames < vae_scale_factor) {
    throw_input_error("bad_duration", "audio duration " + std::to_string(seconds) +
                                          " s is shorter than one latent row (" +
                                          std::to_string(vae_scale_factor * seconds_per_frame()) + " s)");
  }
  return frames;
}

int64_t AudioLDMGeometry::waveform_samples(double seconds) const {
  return static_cast<int64_t>(seconds * static_cast<double>(sampling_rate));
}

std::vector<int64_t> AudioLDMGeometry::latent_shape(int64_t batch, int64_t latent_channels, double seconds) const {
  if (mel_bins < vae_scale_factor) {
    throw_input_error("bad_config", "mel_bins " + std::to_string(mel_bins) +
                                        " is smaller than the VAE's scale factor " + std::to_string(vae_scale_factor));
  }
  return {batch, latent_channels, mel_frames(seconds) / vae_scale_factor, mel_bins / vae_scale_factor};
}

std::string pipeline_component_folder(const std::string& root, const std::string& component) {
  fs::path sub = fs::path(root) / component;
  if (path_exists(sub / "config.json") || path_exists(sub / "scheduler_config.json")) return sub.string();
  return root;
}

std::string pipeline_root_of(const std::string& path, const std::string& component) {
  fs::path p(path);
  if (!p.empty() && (path_exists(p / "model_index.json") || path_exists(p / component))) return p.string();
  return "";
}

AudioLDMGeometry read_audioldm_geometry(const std::string& pipeline_root) {
  AudioLDMGeometry g;
  if (pipeline_root.empty()) return g;
  fs::path vocoder = fs::path(pipeline_root) / "vocoder" / "config.json";
  if (path_exists(vocoder)) {
    ConfigReader r = ConfigReader::from_file(vocoder.string());
    r.read("model_in_dim", g.mel_bins);
    r.read("sampling_rate", g.sampling_rate);
    if (r.contains("upsample_rates")) {
      g.hop_length = 1;
      for (int64_t rate : r.require<std::vector<int64_t>>("upsample_rates")) g.hop_length *= rate;
    }
  }
  fs::path vae = fs::path(pipeline_root) / "vae" / "config.json";
  if (path_exists(vae)) {
    ConfigReader r = ConfigReader::from_file(vae.string());
    // Absent block_out_channels: diffusers' AutoencoderKL default (64,), a factor of 1.
    auto blocks = r.get<std::vector<int64_t>>("block_out_channels", {64});
    g.vae_scale_factor = int64_t{1} << (blocks.empty() ? 0 : blocks.size() - 1);
  }
  if (g.mel_bins <= 0 || g.hop_length <= 0 || g.sampling_rate <= 0) {
    throw_input_error("bad_config", "AudioLDM pipeline " + pipeline_root +
                                        ": vocoder model_in_dim, upsample_rates and sampling_rate must be positive");
  }
  return g;
}

}  // namespace a2a
