// Signal-processing stages: resample, mel_spectrogram, griffin_lim, kaldi_fbank.
//
// A spectrogram travels between stages as a `tensor` value [B, freq, frames] (freq = n_mels for a mel
// spectrogram, n_fft / 2 + 1 for a linear one), with an auxiliary 0-d int64 tensor "sample_rate" that
// griffin_lim uses to rebuild the same mel filterbank. Multichannel audio is mixed down to mono (the
// channel mean) before analysis; griffin_lim writes mono audio [B, 1, time].
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "base/error.h"
#include "media/kaldi_fbank.h"
#include "media/resample.h"
#include "pipeline/registry.h"
#include "vocoders/griffin_lim.h"
#include "vocoders/spectrogram.h"

namespace a2a {
namespace {

constexpr const char* kSampleRateAux = "sample_rate";

std::string shape_text(const at::Tensor& t) { return c10::str(t.sizes()); }

at::Tensor mono(const at::Tensor& audio) { return audio.mean(1); }  // [B, C, T] -> [B, T]

// Common spectrogram parameters, shared by mel_spectrogram and griffin_lim so that their defaults agree.
std::vector<ParamSpec> stft_params() {
  return {
      ranged_param("n_fft", ParamType::Int, 1024, 2, 65536, "FFT size; n_fft / 2 + 1 frequency bins"),
      ranged_param("hop_length", ParamType::Int, 256, 0, 65536, "samples between frames; 0: win_length / 2"),
      ranged_param("win_length", ParamType::Int, 0, 0, 65536, "periodic Hann window length; 0: n_fft"),
  };
}

std::vector<ParamSpec> mel_params() {
  return {
      ranged_param("f_min", ParamType::Float, 0.0, 0.0, 384000.0, "lowest mel band edge (Hz)"),
      ranged_param("f_max", ParamType::Float, 0.0, 0.0, 384000.0, "highest mel band edge (Hz); 0: sample_rate / 2"),
      choice_param("mel_scale", "htk", {"htk", "slaney"}, "mel scale"),
      choice_param("norm", "none", {"none", "slaney"}, "slaney: divide each triangle by its width"),
  };
}

std::vector<ParamSpec> join(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

dsp::StftOptions stft_options(const Json& params) {
  dsp::StftOptions o;
  o.n_fft = param_int(params, "n_fft");
  o.hop_length = param_int(params, "hop_length");
  o.win_length = param_int(params, "win_length");
  o.validate();
  return o;
}

dsp::MelSpectrogramOptions mel_options(const Json& params, int64_t sample_rate, int64_t n_mels, double power) {
  dsp::MelSpectrogramOptions o;
  o.sample_rate = sample_rate;
  o.spectrogram.stft = stft_options(params);
  o.spectrogram.power = power;
  o.n_mels = n_mels;
  o.f_min = param_float(params, "f_min");
  o.f_max = param_float(params, "f_max");
  o.scale = dsp::mel_scale_from_name(param_string(params, "mel_scale"));
  o.norm = dsp::mel_norm_from_name(param_string(params, "norm"));
  return o;
}

// dB of |X| for a spectrogram |X|^power: torchaudio's AmplitudeToDB multiplier is 10 for power 2
// ("power") and 20 for power 1 ("magnitude"); 20 / power covers both and every other exponent.
double db_multiplier_for_power(double power) { return 20.0 / power; }

// ---------------------------------------------------------------------------------------------- resample

class ResampleStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    sample_rate_ = param_int(params, "sample_rate");
    options_.lowpass_filter_width = param_int(params, "lowpass_filter_width");
    options_.rolloff = param_float(params, "rolloff");
    options_.method = param_string(params, "method") == "sinc_interp_kaiser" ? dsp::ResamplingMethod::SincInterpKaiser
                                                                             : dsp::ResamplingMethod::SincInterpHann;
  }

  PortValues run(const PortValues& inputs, RunContext&) override {
    const Value& audio = input(inputs, "audio");
    auto samples = dsp::resample(audio.tensor(), audio.sample_rate(), sample_rate_, options_);
    return {{"audio", Value::audio(samples, sample_rate_)}};
  }

 private:
  int64_t sample_rate_ = 16000;
  dsp::ResampleOptions options_;
};

StageInfo resample_info() {
  StageInfo info;
  info.type = "resample";
  info.description = "Changes the sample rate of audio with torchaudio's windowed-sinc resampler.";
  info.params = {
      ranged_param("sample_rate", ParamType::Int, 16000, 1, 384000, "target sample rate (Hz)"),
      ranged_param("lowpass_filter_width", ParamType::Int, 6, 1, 1024, "sinc zero crossings on each side"),
      ranged_param("rolloff", ParamType::Float, 0.99, 0.01, 1.0, "cutoff as a fraction of the lower Nyquist rate"),
      choice_param("method", "sinc_interp_hann", {"sinc_interp_hann", "sinc_interp_kaiser"}, "filter window"),
  };
  info.ports.inputs = {in_port("audio", ValueType::Audio, "audio [B, C, T]")};
  info.ports.outputs = {out_port("audio", ValueType::Audio, "audio [B, C, T'] at sample_rate")};
  info.create = [] { return std::make_unique<ResampleStage>(); };
  return info;
}

// --------------------------------------------------------------------------------------- mel_spectrogram

class MelSpectrogramStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    params_ = params;
    stft_options(params);  // reject inconsistent sizes now rather than at the first run
    to_db_ = param_bool(params, "to_db");
    top_db_ = param_float(params, "top_db");
  }

  PortValues run(const PortValues& inputs, RunContext&) override {
    const Value& audio = input(inputs, "audio");
    const double power = param_float(params_, "power");
    auto options = mel_options(params_, audio.sample_rate(), param_int(params_, "n_mels"), power);
    auto mel = dsp::mel_spectrogram(mono(audio.tensor()), options);  // [B, n_mels, frames]
    if (to_db_) {
      std::optional<double> top_db;
      if (top_db_ > 0.0) top_db = top_db_;
      // One clamp per spectrogram: [B, 1, n_mels, frames] keeps torchaudio from sharing the maximum.
      mel = dsp::amplitude_to_db(mel.unsqueeze(1), db_multiplier_for_power(power), 1e-10, 0.0, top_db).squeeze(1);
    }
    auto value = Value::tensor(mel).with_aux(kSampleRateAux, torch::tensor(audio.sample_rate(), torch::kLong));
    return {{"mel", value}};
  }

 private:
  Json params_;
  bool to_db_ = false;
  double top_db_ = 80.0;
};

StageInfo mel_spectrogram_info() {
  StageInfo info;
  info.type = "mel_spectrogram";
  info.description =
      "Mel spectrogram of (mono-mixed) audio, as torchaudio's MelSpectrogram (centred reflect-padded STFT, "
      "periodic Hann window), optionally in dB (AmplitudeToDB).";
  info.params = join(stft_params(), mel_params());
  info.params.push_back(ranged_param("n_mels", ParamType::Int, 80, 1, 4096, "mel bands"));
  info.params.push_back(
      ranged_param("power", ParamType::Float, 2.0, 1e-3, 8.0, "exponent of |STFT|: 2 power, 1 magnitude"));
  info.params.push_back(param_spec("to_db", ParamType::Bool, false, "convert to decibels (20 / power * log10)"));
  info.params.push_back(ranged_param("top_db", ParamType::Float, 80.0, 0.0, 1000.0,
                                     "with to_db: floor at (max - top_db) per spectrogram; 0: no floor"));
  info.ports.inputs = {in_port("audio", ValueType::Audio, "audio [B, C, T]; channels are averaged")};
  info.ports.outputs = {
      out_port("mel", ValueType::Tensor, "mel spectrogram [B, n_mels, frames], aux 'sample_rate' (0-d int64)")};
  info.create = [] { return std::make_unique<MelSpectrogramStage>(); };
  return info;
}

// ------------------------------------------------------------------------------------------- griffin_lim

class GriffinLimStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    params_ = params;
    options_.n_fft = param_int(params, "n_fft");
    options_.hop_length = param_int(params, "hop_length");
    options_.win_length = param_int(params, "win_length");
    options_.n_iter = param_int(params, "n_iter");
    options_.momentum = param_float(params, "momentum");
    options_.power = param_float(params, "power");
    options_.rand_init = param_bool(params, "rand_init");
    if (const int64_t length = param_int(params, "length"); length > 0) options_.length = length;
    options_.validate();
    from_mel_ = param_bool(params, "from_mel");
    from_db_ = param_bool(params, "from_db");
    sample_rate_ = param_int(params, "sample_rate");
    if (!from_mel_) vocoder_ = dsp::GriffinLimVocoder(options_, std::nullopt);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    const Value& input_value = input(inputs, "spectrogram");
    at::Tensor spec = input_value.tensor();
    if (spec.dim() == 2) spec = spec.unsqueeze(0);
    if (spec.dim() != 3 || !spec.is_floating_point())
      throw_input_error("bad_spectrogram_shape", "griffin_lim needs a real spectrogram [B, freq, frames], got " +
                                                     shape_text(input_value.tensor()));
    const int64_t sample_rate = resolve_sample_rate(input_value);
    if (from_mel_) {
      const int64_t n_mels = spec.size(1);
      if (!vocoder_ || n_mels != built_n_mels_ || sample_rate != built_sample_rate_) {
        vocoder_ = dsp::GriffinLimVocoder(options_, mel_options(params_, sample_rate, n_mels, options_.power));
        built_n_mels_ = n_mels;
        built_sample_rate_ = sample_rate;
      }
    } else if (spec.size(1) != options_.n_fft / 2 + 1) {
      throw_input_error("bad_spectrogram_shape", "griffin_lim (from_mel: false) needs " +
                                                     std::to_string(options_.n_fft / 2 + 1) +
                                                     " frequency bins (n_fft / 2 + 1), got " + shape_text(spec));
    }
    if (from_db_) spec = torch::pow(10.0, spec / db_multiplier_for_power(options_.power));

    auto generator = at::make_generator<at::CPUGeneratorImpl>(ctx.seed);
    auto waveform = vocoder_->forward(spec.to(torch::kFloat), &generator, [&](int64_t done, int64_t total) {
      ctx.check_cancelled();
      ctx.report_progress(done, total, "griffin-lim iterations");
    });
    return {{"audio", Value::audio(waveform.unsqueeze(1), sample_rate)}};
  }

  torch::nn::Module* module() override { return vocoder_ ? vocoder_.ptr().get() : nullptr; }

 private:
  int64_t resolve_sample_rate(const Value& value) const {
    const auto aux = value.aux().find(kSampleRateAux);
    const int64_t carried = aux == value.aux().end() ? 0 : aux->second.item<int64_t>();
    if (sample_rate_ > 0) {
      if (carried > 0 && carried != sample_rate_)
        throw_input_error("sample_rate_mismatch", "the spectrogram was made at " + std::to_string(carried) +
                                                      " Hz but griffin_lim.sample_rate is " +
                                                      std::to_string(sample_rate_) + ": set it to 0 or " +
                                                      std::to_string(carried));
      return sample_rate_;
    }
    if (carried > 0) return carried;
    throw_input_error("sample_rate_unknown", "griffin_lim needs sample_rate: the spectrogram carries no '" +
                                                 std::string(kSampleRateAux) + "' (set the sample_rate parameter)");
  }

  Json params_;
  dsp::GriffinLimOptions options_;
  bool from_mel_ = true;
  bool from_db_ = false;
  int64_t sample_rate_ = 0;
  dsp::GriffinLimVocoder vocoder_{nullptr};
  int64_t built_n_mels_ = 0;
  int64_t built_sample_rate_ = 0;
};

StageInfo griffin_lim_info() {
  StageInfo info;
  info.type = "griffin_lim";
  info.description =
      "Griffin-Lim vocoder with momentum (torchaudio's GriffinLim): a magnitude or mel spectrogram "
      "[B, freq, frames] to mono audio. Mel input goes through the pseudo-inverse of the mel filterbank. "
      "It holds no weights and computes in float32 whatever the pipeline's dtype: LibTorch has no half-precision "
      "CPU kernels for its STFT's reflection padding, and the phase iteration needs the precision.";
  info.params = join(stft_params(), mel_params());
  info.params.push_back(param_spec("from_mel", ParamType::Bool, true,
                                   "the input is a mel spectrogram (n_mels = its freq size), else n_fft/2+1 bins"));
  info.params.push_back(ranged_param("power", ParamType::Float, 2.0, 1e-3, 8.0, "exponent the input was raised to"));
  info.params.push_back(param_spec("from_db", ParamType::Bool, false, "the input is in dB (mel_spectrogram to_db)"));
  info.params.push_back(ranged_param("n_iter", ParamType::Int, 32, 0, 10000, "iterations"));
  info.params.push_back(ranged_param("momentum", ParamType::Float, 0.99, 0.0, 0.999999, "fast Griffin-Lim momentum"));
  info.params.push_back(param_spec("rand_init", ParamType::Bool, false, "random initial phase (from the stage seed)"));
  info.params.push_back(
      ranged_param("length", ParamType::Int, 0, 0, 1 << 28, "output samples; 0: (frames - 1) * hop_length"));
  info.params.push_back(ranged_param("sample_rate", ParamType::Int, 0, 0, 384000,
                                     "output sample rate; 0: the input's 'sample_rate' aux (from mel_spectrogram)"));
  info.ports.inputs = {in_port("spectrogram", ValueType::Tensor, "[B, freq, frames] or [freq, frames]")};
  info.ports.outputs = {out_port("audio", ValueType::Audio, "mono audio [B, 1, T]")};
  info.create = [] { return std::make_unique<GriffinLimStage>(); };
  return info;
}

// ------------------------------------------------------------------------------------------ kaldi_fbank

class KaldiFbankStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    options_.num_mel_bins = param_int(params, "num_mel_bins");
    options_.frame_length = param_float(params, "frame_length");
    options_.frame_shift = param_float(params, "frame_shift");
    options_.window_type = param_string(params, "window_type");
    options_.htk_compat = param_bool(params, "htk_compat");
    options_.use_energy = param_bool(params, "use_energy");
    options_.dither = param_float(params, "dither");
    options_.low_freq = param_float(params, "low_freq");
    options_.high_freq = param_float(params, "high_freq");
    options_.preemphasis_coefficient = param_float(params, "preemphasis_coefficient");
    options_.remove_dc_offset = param_bool(params, "remove_dc_offset");
    options_.snip_edges = param_bool(params, "snip_edges");
    channel_ = param_int(params, "channel");
    subtract_waveform_mean_ = param_bool(params, "subtract_waveform_mean");
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    const Value& audio = input(inputs, "audio");
    const at::Tensor& samples = audio.tensor();
    if (channel_ >= samples.size(1))
      throw_input_error("bad_channel", "kaldi_fbank.channel is " + std::to_string(channel_) + " but the audio " +
                                           shape_text(samples) + " has " + std::to_string(samples.size(1)) +
                                           " channel(s)");
    auto options = options_;
    options.sample_frequency = static_cast<double>(audio.sample_rate());
    options.channel = 0;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(ctx.seed);
    std::vector<at::Tensor> features;
    for (int64_t b = 0; b < samples.size(0); ++b) {
      ctx.check_cancelled();
      at::Tensor waveform = samples[b].to(torch::kFloat);  // [C, T]
      // ImageBind subtracts the mean of the whole clip before Kaldi's per-frame DC removal.
      if (subtract_waveform_mean_) waveform = waveform - waveform.mean();
      waveform = channel_ < 0 ? waveform.mean(0, /*keepdim=*/true) : waveform.slice(0, channel_, channel_ + 1);
      features.push_back(dsp::kaldi_fbank(waveform, options, &generator));
      ctx.report_progress(b + 1, samples.size(0), "clips");
    }
    return {{"features", Value::tensor(torch::stack(features))}};
  }

 private:
  dsp::KaldiFbankOptions options_;
  int64_t channel_ = 0;
  bool subtract_waveform_mean_ = true;
};

StageInfo kaldi_fbank_info() {
  StageInfo info;
  info.type = "kaldi_fbank";
  info.description =
      "Kaldi-compatible log mel filterbank (torchaudio.compliance.kaldi.fbank); the defaults are ImageBind's "
      "audio front end (128 bins, Hann window, 25 ms frames every 10 ms, clip mean removed).";
  info.params = {
      ranged_param("num_mel_bins", ParamType::Int, 128, 4, 1024, "mel bins"),
      ranged_param("frame_length", ParamType::Float, 25.0, 0.1, 10000.0, "frame length (ms)"),
      ranged_param("frame_shift", ParamType::Float, 10.0, 0.1, 10000.0, "frame shift (ms)"),
      choice_param("window_type", "hanning", {"hamming", "hanning", "povey", "rectangular", "blackman"}, "window"),
      param_spec("htk_compat", ParamType::Bool, true, "with use_energy: energy column last"),
      param_spec("use_energy", ParamType::Bool, false, "add a log-energy column"),
      ranged_param("dither", ParamType::Float, 0.0, 0.0, 1000.0, "Gaussian dither (from the stage seed)"),
      ranged_param("low_freq", ParamType::Float, 20.0, 0.0, 384000.0, "lowest mel edge (Hz)"),
      ranged_param("high_freq", ParamType::Float, 0.0, -384000.0, 384000.0,
                   "highest mel edge (Hz); <= 0: offset from Nyquist"),
      ranged_param("preemphasis_coefficient", ParamType::Float, 0.97, 0.0, 1.0, "preemphasis"),
      param_spec("remove_dc_offset", ParamType::Bool, true, "subtract each frame's mean"),
      param_spec("snip_edges", ParamType::Bool, true, "only whole frames (else reflect at the ends)"),
      ranged_param("channel", ParamType::Int, 0, -1, 1023, "channel to analyse; -1: the channel mean"),
      param_spec("subtract_waveform_mean", ParamType::Bool, true, "subtract the clip's mean first (ImageBind)"),
  };
  info.ports.inputs = {in_port("audio", ValueType::Audio, "audio [B, C, T]")};
  info.ports.outputs = {out_port("features", ValueType::Tensor, "[B, frames, num_mel_bins (+1 with use_energy)]")};
  info.create = [] { return std::make_unique<KaldiFbankStage>(); };
  return info;
}

}  // namespace

A2A_REGISTER_STAGE(resample_info);
A2A_REGISTER_STAGE(mel_spectrogram_info);
A2A_REGISTER_STAGE(griffin_lim_info);
A2A_REGISTER_STAGE(kaldi_fbank_info);

}  // namespace a2a
