// hifigan: a mel spectrogram (AudioLDM's VAE output, [B, 1, frames, mel]) -> waveform with
// SpeechT5HifiGan, cut to the requested duration as AudioLDM's pipeline does.
// audioldm_mel_to_spectrogram: the same log-mel image as the magnitude mel spectrogram [B, mel, frames]
// that griffin_lim takes, so that either vocoder can finish the audio decoder.
#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "diffusion/audioldm.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "vocoders/hifigan.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

// AudioLDM's vocoder geometry (64 mel bins, 160 samples per frame at 16 kHz: upsampling 5·4·2·2·2) at
// toy width: 64 channels after conv_pre, two residual kernels.
SpeechT5HifiGanConfig tiny_hifigan_config() {
  SpeechT5HifiGanConfig c;
  c.model_in_dim = 64;
  c.sampling_rate = 16000;
  c.upsample_initial_channel = 64;
  c.upsample_rates = {5, 4, 2, 2, 2};
  c.upsample_kernel_sizes = {16, 16, 8, 4, 4};
  c.resblock_kernel_sizes = {3, 7};
  c.resblock_dilation_sizes = {{1, 3, 5}, {1, 3, 5}};
  c.normalize_before = false;
  return c;
}

std::shared_ptr<SpeechT5HifiGanImpl> load_vocoder(const std::string& path, const std::string& device,
                                                  at::ScalarType dtype) {
  ComponentRequest request;
  request.component = "vocoder";
  request.who = "hifigan";
  request.hint = "give a transformers SpeechT5HifiGan folder or an AudioLDM pipeline folder with vocoder/";
  const ResolvedComponent files = resolve_component(path, request);
  SpeechT5HifiGan vocoder(SpeechT5HifiGanConfig::from_config(files.config));
  LoadOptions options;
  options.device = device;
  options.dtype = dtype;
  load_weights(*vocoder, files.weights, options);
  cast_floating_point(*vocoder, dtype);
  vocoder->eval();
  return vocoder.ptr();
}

class HifiGanStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    dtype_ = dtype_from_name(ctx.dtype);
    duration_ = param_float(params, "duration");
    const std::string model = param_string(params, "model");
    if (model.empty()) {
      const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
      auto create = [&] {
        SpeechT5HifiGan vocoder(tiny_hifigan_config());
        initialize_seeded_weights(*vocoder, seed);
        cast_floating_point(*vocoder, dtype_);
        vocoder->to(torch::Device(device_));
        vocoder->eval();
        return vocoder.ptr();
      };
      const std::string key = "hifigan:tiny:" + std::to_string(seed) + ":" + device_ + ":" + ctx.dtype;
      vocoder_ = ctx.shared_module<SpeechT5HifiGanImpl>(key, create);
    } else {
      const std::string path = ctx.resolve_path(model);
      auto create = [&] { return load_vocoder(path, device_, dtype_); };
      vocoder_ = ctx.shared_module<SpeechT5HifiGanImpl>("hifigan:" + path + ":" + device_ + ":" + ctx.dtype, create);
    }
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const auto& config = vocoder_->config();
    at::Tensor mel = input(inputs, "spectrogram").tensor().to(at::kFloat);
    // The VAE decodes a one-channel image [B, 1, frames, mel]; the vocoder takes [B, frames, mel].
    if (mel.dim() == 4 && mel.size(1) == 1) mel = mel.squeeze(1);
    if (mel.dim() == 2) mel = mel.unsqueeze(0);
    if (mel.dim() != 3 || mel.size(2) != config.model_in_dim) {
      throw_input_error("bad_shape", "hifigan: spectrogram " + c10::str(input(inputs, "spectrogram").tensor().sizes()) +
                                         " must be [B, 1, frames, " + std::to_string(config.model_in_dim) +
                                         "] or [B, frames, " + std::to_string(config.model_in_dim) +
                                         "] (mel bins last)");
    }
    at::Tensor waveform = vocoder_->forward(mel.to(torch::Device(device_), dtype_)).to(torch::kCPU, torch::kFloat);
    if (duration_ > 0) {
      AudioLDMGeometry geometry;
      geometry.sampling_rate = config.sampling_rate;
      const int64_t samples = geometry.waveform_samples(duration_);
      if (samples > waveform.size(1)) {
        throw_input_error("bad_duration", "hifigan: duration " + std::to_string(duration_) + " s needs " +
                                              std::to_string(samples) + " samples, the spectrogram gives " +
                                              std::to_string(waveform.size(1)));
      }
      waveform = waveform.narrow(1, 0, samples);
    }
    ctx.report_progress(1, 1, "vocoded");
    return {{"audio", Value::audio(waveform.unsqueeze(1).contiguous(), config.sampling_rate)}};
  }

  torch::nn::Module* module() override { return vocoder_.get(); }

 private:
  std::shared_ptr<SpeechT5HifiGanImpl> vocoder_;
  double duration_ = 0.0;
  std::string device_ = "cpu";
  at::ScalarType dtype_ = at::kFloat;
};

StageInfo hifigan_info() {
  StageInfo info;
  info.type = "hifigan";
  info.description =
      "HiFi-GAN vocoder (transformers SpeechT5HifiGan, as in AudioLDM): log-mel frames to a waveform at the "
      "model's sampling rate, optionally cut to a duration as AudioLDM's pipeline does. Without a model it builds a "
      "tiny preset with AudioLDM's geometry (64 mel bins, 160 samples per frame, 16 kHz) and seeded random weights. "
      "It computes in the pipeline's dtype; the waveform comes out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "transformers SpeechT5HifiGan folder (config.json, model.safetensors) or an AudioLDM pipeline folder "
                 "(vocoder/); empty = tiny built-in preset"),
      ranged_param("duration", ParamType::Float, 0.0, 0.0, 86400.0,
                   "seconds of audio to keep (int(duration · sampling_rate) samples); 0 = every sample"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports.inputs = {in_port("spectrogram", ValueType::Tensor,
                               "[B, 1, frames, mel] (vae_decode's sample) or [B, frames, mel] log-mel spectrogram")};
  info.ports.outputs = {out_port("audio", ValueType::Audio, "mono audio [B, 1, T] at the vocoder's sampling rate")};
  info.create = [] { return std::make_unique<HifiGanStage>(); };
  return info;
}

A2A_REGISTER_STAGE(hifigan_info);

// AudioLDM's mel images hold log(clamp(|mel|, 1e-5)): natural-log magnitudes, frames along the height.
class AudioLDMMelToSpectrogramStage : public Stage {
 public:
  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    (void)ctx;
    const at::Tensor& given = input(inputs, "spectrogram").tensor();
    at::Tensor mel = given.to(at::kFloat);
    if (mel.dim() == 4 && mel.size(1) == 1) mel = mel.squeeze(1);
    if (mel.dim() != 3) {
      throw_input_error("bad_shape", "audioldm_mel_to_spectrogram: spectrogram " + c10::str(given.sizes()) +
                                         " must be [B, 1, frames, mel] or [B, frames, mel]");
    }
    return {{"spectrogram", Value::tensor(mel.exp().transpose(1, 2).contiguous())}};
  }
};

StageInfo audioldm_mel_to_spectrogram_info() {
  StageInfo info;
  info.type = "audioldm_mel_to_spectrogram";
  info.description =
      "AudioLDM's log-mel image (vae_decode's sample, [B, 1, frames, mel], natural-log magnitudes) to the magnitude "
      "mel spectrogram [B, mel, frames] that griffin_lim takes (from_mel, power 1; AudioLDM's STFT: n_fft 1024, "
      "hop 160, 16 kHz, slaney mel scale and norm, 0-8000 Hz).";
  info.ports.inputs = {in_port("spectrogram", ValueType::Tensor, "[B, 1, frames, mel] or [B, frames, mel] log-mel")};
  info.ports.outputs = {out_port("spectrogram", ValueType::Tensor, "[B, mel, frames] magnitudes")};
  info.create = [] { return std::make_unique<AudioLDMMelToSpectrogramStage>(); };
  return info;
}

A2A_REGISTER_STAGE(audioldm_mel_to_spectrogram_info);

}  // namespace
}  // namespace a2a
