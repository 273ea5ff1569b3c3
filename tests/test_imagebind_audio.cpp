// ImageBind's audio front end: waveform2melspec against imagebind/data.py, the clip timing of
// ConstantClipsPerVideoSampler in exact arithmetic, load_and_transform_audio_data's clips.
#include <torch/torch.h>

#include <algorithm>

#include "base/error.h"
#include "media/clip_sampler.h"
#include "media/imagebind_audio.h"
#include "test_support.h"
#include "weights/safetensors.h"

namespace {

std::string imagebind_audio_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const a2a::Error& e) {
    return e.code();
  }
  return "no error";
}

void check_fbank_output(const nlohmann::json& meta, const a2a::TensorMap& outputs, const std::string& name,
                        const at::Tensor& ours) {
  const auto& tol = meta.at("tolerance").at(name);
  const double atol = tol.at("suggested_atol").get<double>(), rtol = tol.at("suggested_rtol").get<double>();
  const at::Tensor& ref = outputs.at(name);
  REQUIRE(ours.sizes() == ref.sizes());
  auto diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs();
  std::cout << "imagebind_audio_text " << name << ": max abs diff " << diff.max().item<double>() << " (atol " << atol
            << ", rtol " << rtol << ")" << std::endl;
  CHECK((diff - (atol + rtol * ref.to(at::kDouble).abs())).max().item<double>() <= 0.0);
}

}  // namespace

TEST_CASE("ImageBind waveform2melspec and its normalisation match the reference", "[imagebind]") {
  A2A_REQUIRE_FIXTURE("imagebind_audio_text/meta.json");
  const std::string dir = a2a::test::fixture_path("imagebind_audio_text");
  auto meta = a2a::test::read_json(dir + "/meta.json");
  auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  const nlohmann::json* call = nullptr;
  for (const auto& c : meta.at("calls")) {
    if (c.at("outputs").contains("fbank")) call = &c;
  }
  REQUIRE(call != nullptr);
  const auto& kw = call->at("kwargs");
  const auto waveform = inputs.at(call->at("args").at("waveform").get<std::string>());
  const int64_t rate = kw.at("sample_rate"), mel = kw.at("num_mel_bins"), frames = kw.at("target_length");
  const double mean = kw.at("mean"), std = kw.at("std");

  auto fbank = a2a::imagebind_waveform2melspec(waveform, rate, mel, frames);
  check_fbank_output(meta, outputs, "fbank", fbank);
  auto normalized = a2a::imagebind_normalize_fbank(fbank, mean, std);
  check_fbank_output(meta, outputs, "fbank_normalized", normalized);
  CHECK(waveform.abs().max().item<float>() > 0);  // the input was not centred in place

  // load_and_transform_audio_data: every clip of a waveform of exactly one clip is that waveform.
  a2a::ImageBindAudioOptions options;
  options.sample_rate = rate;
  options.num_mel_bins = mel;
  options.target_length = frames;
  options.clip_duration = kw.at("clip_duration_s").get<double>();
  options.clips_per_video = kw.at("clips_per_video");
  options.mean = mean;
  options.std = std;
  auto clips = a2a::imagebind_audio_clips(waveform, rate, options);
  REQUIRE(clips.sizes() == at::IntArrayRef({options.clips_per_video, 1, mel, frames}));
  for (int64_t k = 0; k < options.clips_per_video; ++k) check_fbank_output(meta, outputs, "fbank_normalized", clips[k]);
}

TEST_CASE("ImageBind clip timing: ConstantClipsPerVideoSampler in exact arithmetic", "[imagebind]") {
  using Ranges = std::vector<std::pair<int64_t, int64_t>>;
  a2a::ConstantClipsSampling three;  // 3 clips of 2 s
  // Values of int(Fraction(max(n / 16000 - 2, 0)) * k / 2 * 16000) and of the end: 84800 samples make
  // max_start the double just below 3.3, so rounding in floating point would give 26400 and 52800.
  CHECK(a2a::constant_clip_sample_ranges(84800, 16000, three) == Ranges{{0, 32000}, {26399, 58399}, {52799, 84799}});
  CHECK(a2a::constant_clip_sample_ranges(80001, 16000, three) == Ranges{{0, 32000}, {24000, 56000}, {48001, 80001}});
  // Shorter than a clip or exactly one: every clip is the whole signal.
  CHECK(a2a::constant_clip_sample_ranges(16000, 16000, three) == Ranges{{0, 32000}, {0, 32000}, {0, 32000}});
  CHECK(a2a::constant_clip_sample_ranges(32000, 16000, three) == Ranges{{0, 32000}, {0, 32000}, {0, 32000}});
  a2a::ConstantClipsSampling five{2.0, 5};
  CHECK(a2a::constant_clip_sample_ranges(123457, 16000, five) ==
        Ranges{{0, 32000}, {22864, 54864}, {45728, 77728}, {68592, 100592}, {91456, 123456}});
  a2a::ConstantClipsSampling one{2.0, 1};
  CHECK(a2a::constant_clip_sample_ranges(100000, 16000, one) == Ranges{{0, 32000}});

  auto times = a2a::constant_clip_timepoints(10.0, five);
  REQUIRE(times.size() == 5);
  CHECK(times[1].first == 2.0);
  CHECK(times[4].second == 10.0);
  CHECK(imagebind_audio_error([] { a2a::constant_clip_sample_ranges(100, 16000, {2.0, 0}); }) == "bad_option");
  CHECK(imagebind_audio_error([] { a2a::constant_clip_timepoints(3.0, {0.0, 3}); }) == "bad_option");
}

TEST_CASE("ImageBind audio clips: overlapping clips, resampling, short input, errors", "[imagebind]") {
  torch::manual_seed(4);
  a2a::ImageBindAudioOptions options;
  // 3 s at 16 kHz: clips [0, 2 s), [0.5, 2.5 s), [1, 3 s), each the fbank of its own samples.
  auto wave = torch::randn({1, 48000}) * 0.1 + 0.5;
  auto clips = a2a::imagebind_audio_clips(wave, 16000, options);
  REQUIRE(clips.sizes() == at::IntArrayRef({3, 1, 128, 204}));
  auto first = a2a::imagebind_normalize_fbank(a2a::imagebind_waveform2melspec(wave.slice(1, 0, 32000), 16000, 128, 204),
                                              options.mean, options.std);
  CHECK(a2a::test::scaled_error(clips[0], first) <= 1e-5);
  // The reference centres each clip in place on a view of the waveform, so the last clip [1 s, 3 s) sees
  // samples the earlier clips shifted by their means: steps at 2 s and 2.5 s (its samples 16000 and 24000).
  // Per-frame DC removal hides the shift except in the frames that straddle a step (98, 99, 148, 149).
  auto last = a2a::imagebind_normalize_fbank(
      a2a::imagebind_waveform2melspec(wave.slice(1, 16000, 48000), 16000, 128, 204), options.mean, options.std);
  const std::vector<int64_t> straddling = {98, 99, 148, 149};
  for (int64_t frame = 0; frame < 198; ++frame) {
    const double diff = (clips[2][0].select(-1, frame) - last[0].select(-1, frame)).abs().max().item<double>();
    INFO("frame " << frame << " differs by " << diff);
    if (std::count(straddling.begin(), straddling.end(), frame)) {
      CHECK(diff > 1e-2);
    } else {
      CHECK(diff <= 1e-4);
    }
  }

  // 44.1 kHz input is resampled first; 1 s gives three identical clips padded past 99 frames.
  auto short_wave = torch::randn({2, 44100}) * 0.1;
  auto short_clips = a2a::imagebind_audio_clips(short_wave, 44100, options);
  REQUIRE(short_clips.sizes() == at::IntArrayRef({3, 1, 128, 204}));
  // Each clip is centred again in place: the same samples up to rounding.
  CHECK(a2a::test::scaled_error(short_clips[0], short_clips[2]) <= 1e-5);
  const float pad = static_cast<float>((0.0 - options.mean) / options.std);
  CHECK(short_clips[0][0].slice(-1, 100).sub(pad).abs().max().item<float>() < 1e-6);

  CHECK(imagebind_audio_error([] { a2a::imagebind_waveform2melspec(torch::zeros({32000}), 16000, 128, 204); }) ==
        "bad_waveform_shape");
  CHECK(imagebind_audio_error([] {
          a2a::imagebind_waveform2melspec(torch::randn({1, 100}), 16000, 128, 204);
        }) == "waveform_too_short");
  CHECK(imagebind_audio_error([] { a2a::imagebind_audio_clips(torch::randn({1, 1000}), 0); }) == "bad_option");
  CHECK(imagebind_audio_error([] { a2a::imagebind_normalize_fbank(torch::zeros({1}), 0.0, 0.0); }) == "bad_option");
}
