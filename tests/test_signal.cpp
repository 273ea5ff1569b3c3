// Parity of the signal-processing functions with torchaudio 0.13 (fixtures in signal/), and their
// properties where no fixture exists.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <regex>

#include "base/error.h"
#include "media/kaldi_fbank.h"
#include "media/resample.h"
#include "test_support.h"
#include "vocoders/griffin_lim.h"
#include "vocoders/spectrogram.h"
#include "weights/safetensors.h"

namespace {

using a2a::test::fixture_path;
using a2a::test::read_json;

struct SignalFixture {
  nlohmann::json meta;
  nlohmann::json params;
  std::map<std::string, at::Tensor> inputs;
  std::map<std::string, at::Tensor> outputs;
};

SignalFixture load_fixture(const std::string& folder) {
  SignalFixture f;
  f.meta = read_json(fixture_path("signal/" + folder + "/meta.json"));
  f.params = f.meta.at("params");
  f.inputs = a2a::load_safetensors(fixture_path("signal/" + folder + "/inputs.safetensors"));
  f.outputs = a2a::load_safetensors(fixture_path("signal/" + folder + "/outputs.safetensors"));
  return f;
}

// A keyword argument written into the fixture's "call" text, e.g. top_db=80.
double call_argument(const nlohmann::json& meta, const std::string& name) {
  const std::string call = meta.at("call").get<std::string>();
  std::smatch match;
  if (!std::regex_search(call, match, std::regex(name + R"(=([-0-9.eE+]+))")))
    throw std::runtime_error("no " + name + " in the fixture's call: " + call);
  return std::stod(match[1].str());
}

a2a::dsp::MelSpectrogramOptions mel_options_from(const nlohmann::json& p) {
  a2a::dsp::MelSpectrogramOptions o;
  o.sample_rate = p.at("sample_rate").get<int64_t>();
  o.spectrogram.stft.n_fft = p.at("n_fft").get<int64_t>();
  o.spectrogram.stft.win_length = p.at("win_length").get<int64_t>();
  o.spectrogram.stft.hop_length = p.at("hop_length").get<int64_t>();
  o.spectrogram.power = p.at("power").get<double>();
  o.n_mels = p.at("n_mels").get<int64_t>();
  o.f_min = p.at("f_min").get<double>();
  o.f_max = p.at("f_max").is_null() ? 0.0 : p.at("f_max").get<double>();
  o.norm = p.at("norm").is_null() ? a2a::dsp::MelNorm::None : a2a::dsp::mel_norm_from_name(p.at("norm"));
  o.scale = a2a::dsp::mel_scale_from_name(p.at("mel_scale"));
  return o;
}

void check_mel_fixture(const std::string& folder) {
  auto f = load_fixture(folder);
  auto options = mel_options_from(f.params);
  auto mel = a2a::dsp::mel_spectrogram(f.inputs.at("waveform"), options);
  A2A_CHECK_CLOSE(mel, f.outputs.at("mel"), 1e-4);

  // AmplitudeToDB(stype="power") for power spectrograms, "magnitude" for magnitude ones.
  const double power = f.params.at("power").get<double>();
  const std::string stype = power == 2.0 ? "power" : "magnitude";
  auto mel_db = a2a::dsp::amplitude_to_db(f.outputs.at("mel"), stype, call_argument(f.meta, "top_db"));
  A2A_CHECK_CLOSE(mel_db, f.outputs.at("mel_db"), 1e-4);
}

void check_resample_fixture(const std::string& folder) {
  auto f = load_fixture(folder);
  auto out = a2a::dsp::resample(f.inputs.at("waveform"), f.params.at("orig_freq").get<int64_t>(),
                                f.params.at("new_freq").get<int64_t>());
  A2A_CHECK_CLOSE(out, f.outputs.at("waveform"), 1e-4);
}

}  // namespace

TEST_CASE("mel spectrogram and dB match torchaudio (HTK, power 2)", "[signal]") {
  A2A_REQUIRE_FIXTURE("signal/mel_htk_power2/meta.json");
  check_mel_fixture("mel_htk_power2");
}

TEST_CASE("mel spectrogram and dB match torchaudio (Slaney scale and norm, power 1)", "[signal]") {
  A2A_REQUIRE_FIXTURE("signal/mel_slaney_power1/meta.json");
  check_mel_fixture("mel_slaney_power1");
}

TEST_CASE("resample matches torchaudio (downsampling)", "[signal]") {
  A2A_REQUIRE_FIXTURE("signal/resample_1/meta.json");
  check_resample_fixture("resample_1");
}

TEST_CASE("resample matches torchaudio (upsampling)", "[signal]") {
  A2A_REQUIRE_FIXTURE("signal/resample_2/meta.json");
  check_resample_fixture("resample_2");
}

TEST_CASE("Kaldi fbank matches torchaudio.compliance.kaldi.fbank", "[signal]") {
  A2A_REQUIRE_FIXTURE("signal/kaldi_fbank/meta.json");
  auto f = load_fixture("kaldi_fbank");
  a2a::dsp::KaldiFbankOptions o;
  const auto& p = f.params;
  o.htk_compat = p.at("htk_compat").get<bool>();
  o.sample_frequency = p.at("sample_frequency").get<double>();
  o.use_energy = p.at("use_energy").get<bool>();
  o.window_type = p.at("window_type").get<std::string>();
  o.num_mel_bins = p.at("num_mel_bins").get<int64_t>();
  o.dither = p.at("dither").get<double>();
  o.frame_length = p.at("frame_length").get<double>();
  o.frame_shift = p.at("frame_shift").get<double>();
  const auto& waveform = f.inputs.at("waveform");
  auto fbank = a2a::dsp::kaldi_fbank(waveform - waveform.mean(), o);
  A2A_CHECK_CLOSE(fbank, f.outputs.at("fbank"), 1e-4);
}

TEST_CASE("Griffin-Lim with momentum matches torchaudio", "[signal]") {
  A2A_REQUIRE_FIXTURE("signal/griffin_lim/meta.json");
  auto f = load_fixture("griffin_lim");
  a2a::dsp::GriffinLimOptions o;
  o.n_fft = f.params.at("n_fft").get<int64_t>();
  o.n_iter = f.params.at("n_iter").get<int64_t>();
  o.win_length = f.params.at("win_length").get<int64_t>();
  o.hop_length = f.params.at("hop_length").get<int64_t>();
  o.power = f.params.at("power").get<double>();
  o.momentum = f.params.at("momentum").get<double>();
  o.rand_init = f.params.at("rand_init").get<bool>();
  a2a::dsp::GriffinLim vocoder(o);
  auto waveform = vocoder->forward(f.inputs.at("spectrogram"));
  // Measured: 0 (the same torch stft/istft kernels as torchaudio's run). The bound is the trajectory bound of the
  // fixtures README, not the model one: 32 momentum iterations (0.99) compound any rounding difference of another
  // FFT backend.
  A2A_CHECK_CLOSE(waveform, f.outputs.at("waveform"), 1e-5);
}

TEST_CASE("stft and istft invert each other", "[signal]") {
  a2a::dsp::StftOptions o;
  o.n_fft = 64;
  o.hop_length = 16;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto wave = at::randn({2, 3, 48 * 16}, gen);
  auto window = a2a::dsp::hann_window(64);
  auto spec = a2a::dsp::stft(wave, o, window);
  REQUIRE(spec.sizes() == at::IntArrayRef({2, 3, 33, 49}));
  auto back = a2a::dsp::istft(spec, o, window, wave.size(-1));
  A2A_CHECK_CLOSE(back, wave, 1e-5);
}

TEST_CASE("inverse mel scale recovers spectra in the filterbank's span", "[signal]") {
  auto fb = a2a::dsp::melscale_fbanks(129, 0.0, 8000.0, 20, 16000, a2a::dsp::MelNorm::Slaney,
                                      a2a::dsp::MelScale::Slaney);  // [129, 20]
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto weights = at::rand({2, 20, 7}, gen);  // non-negative: the spectrum stays non-negative
  auto spectrum = at::matmul(fb, weights);   // [2, 129, 7]
  auto mel = a2a::dsp::apply_filterbank(spectrum, fb);
  REQUIRE(mel.sizes() == at::IntArrayRef({2, 20, 7}));
  auto recovered = a2a::dsp::inverse_mel_scale(mel, fb);
  A2A_CHECK_CLOSE(recovered, spectrum, 1e-4);
  // A negative least-squares solution is clamped: the result is a valid magnitude.
  auto clamped = a2a::dsp::inverse_mel_scale(-mel, fb);
  CHECK(clamped.min().item<float>() >= 0.0f);
}

TEST_CASE("amplitude_to_db keeps torchaudio's top_db grouping", "[signal]") {
  // Two spectrograms whose maxima differ by 100 dB.
  auto x = torch::ones({2, 3, 4});
  x[0].fill_(1e-6);
  x[0][0][0] = 1.0;
  x[1][0][0] = 1e10;
  // [channels, freq, time]: one maximum over both channels (100 dB), so the floor is 20 dB everywhere.
  auto shared = a2a::dsp::amplitude_to_db(x, 10.0, 1e-10, 0.0, 80.0);
  CHECK(shared.min().item<float>() == Approx(20.0f));
  // [batch, 1, freq, time]: one maximum per spectrogram.
  auto separate = a2a::dsp::amplitude_to_db(x.unsqueeze(1), 10.0, 1e-10, 0.0, 80.0).squeeze(1);
  CHECK(separate[0].min().item<float>() == Approx(-60.0f));
  CHECK(separate[1].min().item<float>() == Approx(20.0f));
  auto db = a2a::dsp::amplitude_to_db(torch::full({1, 1}, 100.0), "magnitude", std::nullopt);
  CHECK(db.item<float>() == Approx(40.0f));
  auto back = a2a::dsp::db_to_amplitude(torch::full({1}, 20.0), 1.0, 1.0);
  CHECK(back.item<float>() == Approx(100.0f));
}

TEST_CASE("resample keeps a tone and the length rule", "[signal]") {
  const int64_t orig = 48000, target = 16000, n = 4801;
  auto t = torch::arange(n, torch::kDouble) / static_cast<double>(orig);
  auto tone = torch::sin(2 * M_PI * 1000.0 * t).to(torch::kFloat).reshape({1, 1, n});
  auto out = a2a::dsp::resample(tone, orig, target);
  REQUIRE(out.sizes() == at::IntArrayRef({1, 1, 1601}));  // ceil(16000 * 4801 / 48000)
  auto t_out = torch::arange(1601, torch::kDouble) / static_cast<double>(target);
  auto expected = torch::sin(2 * M_PI * 1000.0 * t_out).to(torch::kFloat);
  // Away from the zero-padded edges the band-limited tone is reproduced.
  auto middle = torch::indexing::Slice(100, 1500);
  CHECK((out.flatten().index({middle}) - expected.index({middle})).abs().max().item<float>() < 1e-3f);
  CHECK(a2a::dsp::resample(tone, orig, orig).equal(tone));
  CHECK_THROWS_AS(a2a::dsp::resample(tone, 0, 16000), a2a::Error);
  CHECK_THROWS_AS(a2a::dsp::resample(tone.to(torch::kLong), orig, target), a2a::Error);
}

TEST_CASE("Griffin-Lim rejects bad input and is deterministic per generator", "[signal]") {
  a2a::dsp::GriffinLimOptions o;
  o.n_fft = 64;
  o.hop_length = 16;
  o.n_iter = 4;
  a2a::dsp::GriffinLim vocoder(o);
  CHECK_THROWS_AS(vocoder->forward(torch::ones({1, 30, 10})), a2a::Error);
  auto spec = torch::ones({1, 33, 10});
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(11);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(11);
  int64_t iterations = 0;
  auto a = vocoder->forward(spec, &g1, [&](int64_t done, int64_t total) {
    iterations = done;
    CHECK(total == 4);
  });
  auto b = vocoder->forward(spec, &g2);
  CHECK(iterations == 4);
  CHECK(a.sizes() == at::IntArrayRef({1, 9 * 16}));
  CHECK(a.equal(b));
  o.momentum = 1.0;
  CHECK_THROWS_AS(a2a::dsp::GriffinLim(o), a2a::Error);
}
