// The signal stages through the registry: audio -> mel_spectrogram -> griffin_lim -> audio, resample,
// kaldi_fbank.
#include <torch/torch.h>

#include "base/error.h"
#include "media/kaldi_fbank.h"
#include "pipeline/registry.h"
#include "stage_runner.h"
#include "test_support.h"
#include "vocoders/spectrogram.h"

namespace {

std::unique_ptr<a2a::Stage> make_signal_stage(const std::string& type, a2a::Json params = a2a::Json::object()) {
  return a2a::test::configure_stage(type, params, nullptr, type).stage;
}

a2a::Value tone(double hz, int64_t rate, int64_t samples, int64_t channels = 1) {
  auto t = torch::arange(samples, torch::kDouble) / static_cast<double>(rate);
  auto wave = (0.5 * torch::sin(2 * M_PI * hz * t)).to(torch::kFloat);
  return a2a::Value::audio(wave.reshape({1, 1, samples}).repeat({2, channels, 1}), rate);
}

// The frequency of the strongest bin of a waveform [T].
double peak_hz(const at::Tensor& wave, int64_t rate) {
  auto spectrum = torch::fft_rfft(wave * torch::hann_window(wave.size(0), false)).abs();
  const auto bin = spectrum.argmax().item<int64_t>();
  return static_cast<double>(bin) * static_cast<double>(rate) / static_cast<double>(wave.size(0));
}

}  // namespace

TEST_CASE("audio -> mel_spectrogram -> griffin_lim -> audio keeps the pitch", "[signal]") {
  const int64_t rate = 16000;
  auto input = tone(440.0, rate, 4096, /*channels=*/2);
  a2a::Json mel_params = {{"n_fft", 512}, {"hop_length", 128}, {"n_mels", 64}, {"to_db", true}};
  auto mel_stage = make_signal_stage("mel_spectrogram", mel_params);
  a2a::RunContext ctx;
  ctx.seed = 7;
  auto mel = mel_stage->run({{"audio", input}}, ctx).at("mel");
  REQUIRE(mel.type() == a2a::ValueType::Tensor);
  REQUIRE(mel.tensor().sizes() == at::IntArrayRef({2, 64, 4096 / 128 + 1}));
  REQUIRE(mel.aux().count("sample_rate") == 1);
  CHECK(mel.aux().at("sample_rate").item<int64_t>() == rate);
  // to_db with top_db 80: each spectrogram spans at most 80 dB.
  auto range = mel.tensor().amax({1, 2}) - mel.tensor().amin({1, 2});
  CHECK(range.max().item<float>() <= 80.0f + 1e-3f);

  int64_t last_done = 0;
  ctx.progress = [&](int64_t done, int64_t total, const std::string&) {
    last_done = done;
    CHECK(total == 16);
  };
  auto vocoder =
      make_signal_stage("griffin_lim", {{"n_fft", 512}, {"hop_length", 128}, {"from_db", true}, {"n_iter", 16}});
  auto out = vocoder->run({{"spectrogram", mel}}, ctx).at("audio");
  CHECK(last_done == 16);
  REQUIRE(out.type() == a2a::ValueType::Audio);
  CHECK(out.sample_rate() == rate);
  REQUIRE(out.tensor().sizes() == at::IntArrayRef({2, 1, (4096 / 128) * 128}));
  REQUIRE(vocoder->module() != nullptr);
  // The mel bands around 440 Hz are narrow enough for the pitch to survive the inverse filterbank.
  CHECK(std::abs(peak_hz(out.tensor()[0][0], rate) - 440.0) < 40.0);
  // The vocoded audio analyses back to nearly the same mel spectrogram (where the tone has energy).
  auto remel = mel_stage->run({{"audio", out}}, ctx).at("mel").tensor();
  auto loud = mel.tensor() > mel.tensor().amax() - 30.0;
  const double db_error = (remel - mel.tensor()).abs().masked_select(loud).mean().item<double>();
  INFO("mean dB error in the loud bins " << db_error);
  CHECK(db_error < 3.0);
  auto again = vocoder->run({{"spectrogram", mel}}, ctx).at("audio");
  CHECK(again.tensor().equal(out.tensor()));
}

TEST_CASE("griffin_lim stage reports wrong shapes and sample rates", "[signal]") {
  a2a::RunContext ctx;
  auto linear =
      make_signal_stage("griffin_lim", {{"from_mel", false}, {"n_fft", 64}, {"hop_length", 16}, {"sample_rate", 8000}});
  auto bad = a2a::Value::tensor(torch::ones({1, 20, 5}));
  try {
    linear->run({{"spectrogram", bad}}, ctx);
    FAIL("a spectrogram with the wrong bin count was accepted");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "bad_spectrogram_shape");
  }
  auto ok = linear->run({{"spectrogram", a2a::Value::tensor(torch::ones({33, 5}))}}, ctx).at("audio");
  CHECK(ok.tensor().sizes() == at::IntArrayRef({1, 1, 64}));
  CHECK(ok.sample_rate() == 8000);

  auto mel_vocoder = make_signal_stage("griffin_lim", {{"sample_rate", 22050}});
  auto mel = a2a::Value::tensor(torch::ones({1, 80, 4})).with_aux("sample_rate", torch::tensor(int64_t{16000}));
  try {
    mel_vocoder->run({{"spectrogram", mel}}, ctx);
    FAIL("a sample rate mismatch was accepted");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "sample_rate_mismatch");
  }
  auto unknown_rate = make_signal_stage("griffin_lim");
  CHECK_THROWS_AS(unknown_rate->run({{"spectrogram", a2a::Value::tensor(torch::ones({1, 80, 4}))}}, ctx), a2a::Error);
}

TEST_CASE("resample stage changes the rate of every channel", "[signal]") {
  auto stage = make_signal_stage("resample", {{"sample_rate", 16000}});
  a2a::RunContext ctx;
  auto out = stage->run({{"audio", tone(1000.0, 44100, 4410, 2)}}, ctx).at("audio");
  CHECK(out.sample_rate() == 16000);
  REQUIRE(out.tensor().sizes() == at::IntArrayRef({2, 2, 1600}));
  CHECK(std::abs(peak_hz(out.tensor()[1][1], 16000) - 1000.0) < 20.0);
}

TEST_CASE("kaldi_fbank stage gives ImageBind's features per clip", "[signal]") {
  auto stage = make_signal_stage("kaldi_fbank");
  a2a::RunContext ctx;
  auto audio = tone(300.0, 16000, 4000);
  auto features = stage->run({{"audio", audio}}, ctx).at("features");
  REQUIRE(features.tensor().sizes() == at::IntArrayRef({2, 1 + (4000 - 400) / 160, 128}));
  a2a::dsp::KaldiFbankOptions o;
  o.num_mel_bins = 128;
  o.window_type = "hanning";
  o.htk_compat = true;
  auto clip = audio.tensor()[0];
  auto direct = a2a::dsp::kaldi_fbank(clip - clip.mean(), o);
  A2A_CHECK_CLOSE(features.tensor()[0], direct, 1e-6);
}
