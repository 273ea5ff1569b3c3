// SpeechT5HifiGan vocoder: parity with transformers, AudioLDM's real layout, the hifigan stage.
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "base/error.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stage_runner.h"
#include "test_support.h"
#include "vocoders/hifigan.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

using a2a::test::first_difference;
using a2a::test::read_key_list;

// Replays a SpeechT5HifiGan fixture folder's forward call; every size and option comes from its files.
void check_hifigan_fixture(const std::string& dir) {
  torch::NoGradGuard no_grad;
  INFO("fixture " << dir);
  auto config = SpeechT5HifiGanConfig::from_json(test::read_json(dir + "/config.json"));
  auto meta = test::read_json(dir + "/meta.json");
  auto inputs = load_safetensors(dir + "/inputs.safetensors");
  auto outputs = load_safetensors(dir + "/outputs.safetensors");
  auto weights = load_safetensors(dir + "/model.safetensors");
  SpeechT5HifiGan vocoder(config);
  LoadOptions options;
  options.source = dir + "/model.safetensors";
  auto report = load_state_dict(*vocoder, weights, options);
  CHECK(report.loaded == meta.at("state_dict_keys").get<size_t>());
  vocoder->eval();

  const auto& call = meta["calls"][0];
  REQUIRE(call["method"] == "forward");
  at::Tensor spectrogram = inputs.at(call["args"]["spectrogram"].get<std::string>());
  at::Tensor waveform = vocoder->forward(spectrogram);
  for (const auto& kv : call["outputs"].items()) {
    const at::Tensor& ref = outputs.at(kv.key());
    REQUIRE(waveform.sizes() == ref.sizes());
    std::cout << meta["fixture"].get<std::string>() << " " << kv.key() << ": scaled max abs error "
              << test::scaled_error(waveform, ref) << std::endl;
    A2A_CHECK_CLOSE(waveform, ref, 1e-4);
  }
  CHECK(waveform.size(1) == config.output_length(spectrogram.size(1)));

  // An unbatched spectrogram gives the first row's waveform.
  A2A_CHECK_CLOSE(vocoder->forward(spectrogram[0]), waveform[0], 1e-5);

  // normalize_before applies (x - mean) / scale with the buffers of the weights: the fixture's own buffers when
  // they are not the identity, random ones otherwise.
  SpeechT5HifiGanConfig plain_config = config;
  plain_config.normalize_before = false;
  SpeechT5HifiGan plain(plain_config);
  load_state_dict(*plain, weights, options);
  SpeechT5HifiGanConfig normalizing = config;
  normalizing.normalize_before = true;
  SpeechT5HifiGan normalized(normalizing);
  load_state_dict(*normalized, weights, options);
  if (at::equal(normalized->mean, at::zeros_like(normalized->mean)) &&
      at::equal(normalized->scale, at::ones_like(normalized->scale))) {
    auto generator = at::detail::createCPUGenerator(7);
    normalized->mean.copy_(at::randn({config.model_in_dim}, generator));
    normalized->scale.copy_(at::rand({config.model_in_dim}, generator) + 0.5);
  }
  A2A_CHECK_CLOSE(normalized->forward(spectrogram),
                  plain->forward((spectrogram - normalized->mean) / normalized->scale), 1e-5);
}

std::unique_ptr<Stage> make_hifigan_stage(Json given, ModuleCache* cache) {
  return a2a::test::configure_stage("hifigan", given, cache).stage;
}

}  // namespace

TEST_CASE("SpeechT5HifiGan matches transformers on the fixture", "[hifigan]") {
  A2A_REQUIRE_FIXTURE("speecht5_hifigan/model.safetensors");
  check_hifigan_fixture(test::fixture_path("speecht5_hifigan"));
}

TEST_CASE("SpeechT5HifiGan matches transformers on the three-stage variant (normalize_before)", "[hifigan]") {
  check_hifigan_fixture(std::string(A2A_SOURCE_DIR) + "/tests/data/variants/speecht5_hifigan_3up");
}

TEST_CASE("SpeechT5HifiGan builds with AudioLDM's real vocoder layout", "[hifigan]") {
  const std::string config_file = "hf_layouts/audioldm-s-full-v2/vocoder/config.json";
  A2A_REQUIRE_FIXTURE(config_file);
  A2A_REQUIRE_FIXTURE("keys/audioldm_vocoder.txt");
  auto config = SpeechT5HifiGanConfig::from_json(test::read_json(test::fixture_path(config_file)));
  SpeechT5HifiGan vocoder(config);
  std::map<std::string, std::vector<int64_t>> ours;
  for (const auto& kv : vocoder->named_parameters()) ours[kv.key()] = kv.value().sizes().vec();
  for (const auto& kv : vocoder->named_buffers()) ours[kv.key()] = kv.value().sizes().vec();
  auto ref = read_key_list(test::fixture_path("keys/audioldm_vocoder.txt"));
  CHECK(ours.size() == ref.size());
  for (const auto& kv : ref) {
    INFO(kv.first);
    REQUIRE(ours.count(kv.first) == 1);
    CHECK(ours.at(kv.first) == kv.second);
  }
  // 160 samples per mel frame: 10 ms at 16 kHz; the first transposed convolution (kernel 16, stride 5,
  // padding 5) adds one sample, which the later stages multiply by 32.
  CHECK(config.hop_length() == 160);
  CHECK(config.output_length(512) == 160 * 512 + 32);
}

TEST_CASE("SpeechT5HifiGan rejects bad configs and inputs", "[hifigan]") {
  CHECK_THROWS_AS(SpeechT5HifiGanConfig::from_json({{"upsample_rates", {4, 4}}, {"upsample_kernel_sizes", {8}}}),
                  a2a::Error);
  CHECK_THROWS_AS(SpeechT5HifiGanConfig::from_json({{"resblock_kernel_sizes", {3}}}), a2a::Error);
  CHECK_THROWS_AS(SpeechT5HifiGanConfig::from_json({{"upsample_initial_channel", 4}}), a2a::Error);
  SpeechT5HifiGanConfig config;
  config.model_in_dim = 8;
  config.upsample_initial_channel = 8;
  config.upsample_rates = {2, 2};
  config.upsample_kernel_sizes = {4, 4};
  config.resblock_kernel_sizes = {3};
  config.resblock_dilation_sizes = {{1, 3}};
  SpeechT5HifiGan vocoder(config);
  CHECK(vocoder->forward(torch::zeros({1, 5, 8})).sizes() == at::IntArrayRef({1, 20}));
  CHECK_THROWS_AS(vocoder->forward(torch::zeros({1, 5, 7})), a2a::Error);
  CHECK_THROWS_AS(vocoder->forward(torch::zeros({1, 1, 5, 8, 2})), a2a::Error);
}

TEST_CASE("hifigan stage vocodes a VAE mel sample to audio, trimmed to the duration", "[hifigan]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  auto stage = make_hifigan_stage({{"duration", 0.25}}, &cache);
  auto& vocoder = dynamic_cast<SpeechT5HifiGanImpl&>(*stage->module());
  const auto& config = vocoder.config();
  const int64_t frames = 28;
  auto generator = at::detail::createCPUGenerator(3);
  at::Tensor mel = at::randn({1, 1, frames, config.model_in_dim}, generator);
  RunContext run;
  auto out = stage->run({{"spectrogram", Value::tensor(mel)}}, run);
  const Value& audio = out.at("audio");
  REQUIRE(audio.type() == ValueType::Audio);
  CHECK(audio.sample_rate() == config.sampling_rate);
  const int64_t samples = static_cast<int64_t>(0.25 * static_cast<double>(config.sampling_rate));
  REQUIRE(audio.tensor().sizes() == at::IntArrayRef({1, 1, samples}));
  A2A_CHECK_CLOSE(audio.tensor().view({-1}), vocoder.forward(mel.squeeze(1)).view({-1}).narrow(0, 0, samples), 1e-6);

  // duration 0 keeps every sample.
  auto whole = make_hifigan_stage(Json::object(), &cache);
  CHECK(whole->module() == stage->module());
  CHECK(whole->run({{"spectrogram", Value::tensor(mel)}}, run).at("audio").tensor().size(2) ==
        config.output_length(frames));
  CHECK_THROWS_AS(whole->run({{"spectrogram", Value::tensor(at::zeros({1, frames, config.model_in_dim + 1}))}}, run),
                  a2a::Error);
}
