// CLAP text encoder (ClapTextModelWithProjection): parity with transformers, AudioLDM's real layout,
// the clap_text_encoder stage.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/error.h"
#include "encoders/clap_text_model.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stage_runner.h"
#include "test_support.h"
#include "tokenizers/tokenizer.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

using a2a::test::first_difference;
using a2a::test::read_key_list;

std::unique_ptr<Stage> make_clap_stage(const std::string& type, Json given, ModuleCache* cache) {
  return a2a::test::configure_stage(type, given, cache).stage;
}

}  // namespace

TEST_CASE("ClapTextModelWithProjection matches transformers on the fixture", "[clap]") {
  A2A_REQUIRE_FIXTURE("clap_text_model_with_projection/model.safetensors");
  torch::NoGradGuard no_grad;
  const std::string folder = "clap_text_model_with_projection";
  auto config = ClapTextConfig::from_json(test::read_json(test::fixture_path(folder + "/config.json")));
  auto meta = test::read_json(test::fixture_path(folder + "/meta.json"));
  auto inputs = load_safetensors(test::fixture_path(folder + "/inputs.safetensors"));
  auto outputs = load_safetensors(test::fixture_path(folder + "/outputs.safetensors"));
  ClapTextModelWithProjection model(config);
  LoadOptions options;
  options.source = folder + "/model.safetensors";
  // Strict: the position_ids / token_type_ids buffers of the file are registered here too.
  load_state_dict(*model, load_safetensors(test::fixture_path(folder + "/model.safetensors")), options);
  model->eval();

  const auto& call = meta["calls"][0];
  REQUIRE(call["method"] == "forward");
  at::Tensor input_ids = inputs.at(call["args"]["input_ids"].get<std::string>());
  at::Tensor attention_mask;
  if (call["args"].contains("attention_mask"))
    attention_mask = inputs.at(call["args"]["attention_mask"].get<std::string>());
  auto out = model->forward(input_ids, attention_mask);
  for (const auto& kv : call["outputs"].items()) {
    const std::string& name = kv.key();
    at::Tensor ours;
    if (name == "text_embeds")
      ours = out.text_embeds;
    else if (name == "last_hidden_state")
      ours = out.last_hidden_state;
    else
      FAIL("unknown output " << name);
    std::cout << "clap_text_model_with_projection " << name << ": scaled max abs error "
              << test::scaled_error(ours, outputs.at(name)) << std::endl;
    A2A_CHECK_CLOSE(ours, outputs.at(name), 1e-4);
  }
}

TEST_CASE("CLAP position ids count non-pad tokens from padding_idx", "[clap]") {
  auto ids = torch::tensor({0, 5, 7, 2, 1, 1}, torch::kLong).view({1, 6});
  auto positions = roberta_position_ids(ids, 1);
  CHECK(positions.equal(torch::tensor({2, 3, 4, 5, 1, 1}, torch::kLong).view({1, 6})));
}

TEST_CASE("CLAP text encoder builds with AudioLDM's real layout", "[clap]") {
  const std::string config_file = "hf_layouts/audioldm-s-full-v2/text_encoder/config.json";
  A2A_REQUIRE_FIXTURE(config_file);
  A2A_REQUIRE_FIXTURE("keys/audioldm_text_encoder.txt");
  auto config = ClapTextConfig::from_json(test::read_json(test::fixture_path(config_file)));
  ClapTextModelWithProjection model(config);
  std::map<std::string, std::vector<int64_t>> ours;
  for (const auto& kv : model->named_parameters()) ours[kv.key()] = kv.value().sizes().vec();
  for (const auto& kv : model->named_buffers()) ours[kv.key()] = kv.value().sizes().vec();
  auto ref = read_key_list(test::fixture_path("keys/audioldm_text_encoder.txt"));
  CHECK(ours.size() == ref.size());
  for (const auto& kv : ref) {
    INFO(kv.first);
    REQUIRE(ours.count(kv.first) == 1);
    CHECK(ours.at(kv.first) == kv.second);
  }
  CHECK(model->text_model->embeddings->position_ids.scalar_type() == at::kLong);
}

TEST_CASE("CLAP text model rejects bad inputs and configs with clear errors", "[clap]") {
  ClapTextConfig config;
  config.vocab_size = 20;
  config.hidden_size = 8;
  config.intermediate_size = 16;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.max_position_embeddings = 6;  // pad 1: at most 4 tokens
  config.projection_dim = 4;
  ClapTextModelWithProjection model(config);
  CHECK_NOTHROW(model->forward(torch::full({1, 4}, 3, torch::kLong)));
  CHECK_THROWS_AS(model->forward(torch::full({1, 5}, 3, torch::kLong)), a2a::Error);
  CHECK_THROWS_AS(model->forward(torch::full({1, 3}, 20, torch::kLong)), a2a::Error);
  CHECK_THROWS_AS(model->forward(torch::zeros({3}, torch::kLong)), a2a::Error);
  CHECK_THROWS_AS(model->forward(torch::zeros({1, 3}, torch::kLong), torch::ones({1, 2}, torch::kLong)), a2a::Error);
  CHECK_THROWS_AS(ClapTextConfig::from_json({{"hidden_size", 10}, {"num_attention_heads", 3}}), a2a::Error);
  CHECK_THROWS_AS(ClapTextConfig::from_json({{"hidden_size", "wide"}}), a2a::Error);
}

TEST_CASE("clap_text_encoder's tiny preset gives unit-norm embeddings, masked padding", "[clap]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  auto stage = make_clap_stage("clap_text_encoder", Json::object(), &cache);
  RunContext run;
  auto out = stage->run({{"text", Value::text("a dog barking")}}, run);
  const at::Tensor embedding = out.at("embedding").tensor();
  REQUIRE(embedding.dim() == 3);
  CHECK(embedding.size(0) == 1);
  CHECK(embedding.size(1) == 1);
  auto& model = dynamic_cast<ClapTextModelWithProjectionImpl&>(*stage->module());
  CHECK(embedding.size(2) == model.text_model->config.projection_dim);
  CHECK(embedding.norm().item<double>() == Approx(1.0).epsilon(1e-5));
  const at::Tensor negative = out.at("negative_embedding").tensor();
  CHECK(negative.sizes() == embedding.sizes());
  CHECK_FALSE(torch::allclose(negative, embedding));

  // The ids are <s> (0), the bytes + 3, </s> (2); padding the ids under the mask, as AudioLDM's tokenizer
  // does, gives the same embedding.
  std::vector<int64_t> ids = {0};
  for (unsigned char c : std::string("a dog barking")) ids.push_back(c + 3);
  ids.push_back(2);
  const int64_t real = static_cast<int64_t>(ids.size());
  std::vector<int64_t> mask(ids.size(), 1);
  ids.resize(20, 1);
  mask.resize(20, 0);
  auto padded =
      model.forward(torch::tensor(ids, torch::kLong).view({1, 20}), torch::tensor(mask, torch::kLong).view({1, 20}));
  at::Tensor reference = padded.text_embeds / padded.text_embeds.norm();
  A2A_CHECK_CLOSE(embedding.view({-1}), reference.view({-1}), 1e-5);
  CHECK(real == 15);

  // max_length truncates the prompt and keeps </s>.
  auto short_stage = make_clap_stage("clap_text_encoder", {{"max_length", 5}}, &cache);
  CHECK(short_stage->module() == stage->module());
  std::vector<int64_t> truncated = {0, 'a' + 3, ' ' + 3, 'd' + 3, 2};
  auto cut = model.forward(torch::tensor(truncated, torch::kLong).view({1, 5})).text_embeds;
  A2A_CHECK_CLOSE(short_stage->run({{"text", Value::text("a dog barking")}}, run).at("embedding").tensor().view({-1}),
                  (cut / cut.norm()).view({-1}), 1e-5);

  auto raw = make_clap_stage("clap_text_encoder", {{"normalize", false}}, &cache);
  at::Tensor unnormalised = raw->run({{"text", Value::text("a dog barking")}}, run).at("embedding").tensor();
  A2A_CHECK_CLOSE(unnormalised / unnormalised.norm(), embedding, 1e-6);

  CHECK_THROWS_AS(make_clap_stage("clap_text_encoder", {{"model", "/nonexistent/audioldm"}}, &cache), a2a::Error);
}

TEST_CASE("clap_text_encoder loads a transformers folder with its RoBERTa tokenizer.json", "[clap]") {
  A2A_REQUIRE_FIXTURE("clap_text_model_with_projection/model.safetensors");
  A2A_REQUIRE_FIXTURE("tokenizers/roberta/tokenizer.json");
  torch::NoGradGuard no_grad;
  namespace fs = std::filesystem;
  // An AudioLDM-style pipeline folder: text_encoder/ with the fixture's config and weights, tokenizer/ with
  // RoBERTa's real tokenizer.json (AudioLDM's).
  const fs::path folder = fs::path(test::scratch_dir()) / "clap_pipeline";
  fs::remove_all(folder);
  fs::create_directories(folder / "text_encoder");
  fs::create_directories(folder / "tokenizer");
  fs::copy_file(test::fixture_path("clap_text_model_with_projection/config.json"),
                folder / "text_encoder" / "config.json");
  fs::create_symlink(test::fixture_path("clap_text_model_with_projection/model.safetensors"),
                     folder / "text_encoder" / "model.safetensors");
  fs::create_symlink(test::fixture_path("tokenizers/roberta/tokenizer.json"), folder / "tokenizer" / "tokenizer.json");

  ModuleCache cache;
  auto stage = make_clap_stage("clap_text_encoder", {{"model", folder.string()}, {"max_length", 16}}, &cache);
  auto& model = dynamic_cast<ClapTextModelWithProjectionImpl&>(*stage->module());
  // Frequent words, whose ids fit the fixture's small embedding table.
  const std::string prompt = "the, and the.";
  auto tokenizer = load_tokenizer((folder / "tokenizer").string());
  std::vector<int64_t> ids = {0};
  for (int64_t id : tokenizer->encode(prompt)) ids.push_back(id);
  ids.push_back(2);
  for (int64_t id : ids) REQUIRE(id < model.text_model->config.vocab_size);
  CHECK(ids.size() > 4);
  RunContext run;
  auto out = stage->run({{"text", Value::text(prompt)}}, run);
  auto reference = model.forward(torch::tensor(ids, torch::kLong).view({1, -1})).text_embeds;
  A2A_CHECK_CLOSE(out.at("embedding").tensor().view({-1}), (reference / reference.norm()).view({-1}), 1e-5);
  CHECK_THROWS_AS(make_clap_stage("clap_text_encoder", {{"model", folder.string()}, {"max_length", 100}}, &cache),
                  a2a::Error);
}
