// CLIP text encoder: parity with transformers' CLIPTextModel, real checkpoint layouts, clip_skip.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/error.h"
#include "encoders/clip_text_model.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "test_support.h"
#include "tokenizers/unicode.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

using a2a::test::first_difference;
using a2a::test::read_key_list;

std::map<std::string, std::vector<int64_t>> parameter_shapes(torch::nn::Module& module) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().sizes().vec();
  return out;
}

struct ClipFixture {
  CLIPTextConfig config;
  TensorMap weights, inputs, outputs;
  nlohmann::json meta;
};

// `dir` is a CLIPTextModel fixture folder.
ClipFixture load_clip_fixture(const std::string& dir) {
  ClipFixture f;
  f.config = CLIPTextConfig::from_json(test::read_json(dir + "/config.json"));
  f.meta = test::read_json(dir + "/meta.json");
  f.weights = load_safetensors(dir + "/model.safetensors");
  f.inputs = load_safetensors(dir + "/inputs.safetensors");
  f.outputs = load_safetensors(dir + "/outputs.safetensors");
  return f;
}

const char* const kSharedClipFixture = "clip_text_model";

std::string clip_variant_dir() { return std::string(A2A_SOURCE_DIR) + "/tests/data/variants/clip_text_model_v2"; }

void check_clip_parity(const std::string& dir) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto f = load_clip_fixture(dir);
  CLIPTextModel model(f.config);
  LoadOptions options;
  options.source = dir + "/model.safetensors";
  load_state_dict(*model, f.weights, options);
  model->eval();

  const auto& call = f.meta["calls"][0];
  REQUIRE(call["method"] == "forward");
  auto input_ids = f.inputs.at(call["args"]["input_ids"].get<std::string>());
  const bool hidden_states = call["kwargs"].value("output_hidden_states", false);
  auto out = model->forward(input_ids, at::Tensor(), hidden_states);

  for (const auto& kv : call["outputs"].items()) {
    const std::string& name = kv.key();
    at::Tensor ours;
    if (name == "last_hidden_state") {
      ours = out.last_hidden_state;
    } else if (name == "pooler_output") {
      ours = out.pooler_output;
    } else if (name.rfind("hidden_states_", 0) == 0) {
      size_t index = std::stoul(name.substr(std::string("hidden_states_").size()));
      REQUIRE(index < out.hidden_states.size());
      ours = out.hidden_states[index];
    } else {
      FAIL("unknown output " << name);
    }
    double err = test::scaled_error(ours, f.outputs.at(name));
    std::cout << f.meta["fixture"].get<std::string>() << " " << name << ": scaled max abs error " << err << std::endl;
    A2A_CHECK_CLOSE(ours, f.outputs.at(name), 1e-4);
  }
  CHECK(out.hidden_states.size() == static_cast<size_t>(f.config.num_hidden_layers + 1));
}

void check_clip_skip(const std::string& dir) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto f = load_clip_fixture(dir);
  CLIPTextModel model(f.config);
  LoadOptions options;
  load_state_dict(*model, f.weights, options);
  auto input_ids = f.inputs.at(f.meta["calls"][0]["args"]["input_ids"].get<std::string>());
  auto& text = *model->text_model;

  A2A_CHECK_CLOSE(clip_prompt_embedding(text, input_ids, 0), f.outputs.at("last_hidden_state"), 1e-4);
  const int64_t layers = f.config.num_hidden_layers;
  for (int64_t skip = 1; skip <= layers; ++skip) {
    auto ref = text.final_layer_norm(f.outputs.at("hidden_states_" + std::to_string(layers - skip)));
    A2A_CHECK_CLOSE(clip_prompt_embedding(text, input_ids, skip), ref, 1e-4);
  }
  CHECK_THROWS_AS(clip_prompt_embedding(text, input_ids, layers + 1), a2a::Error);
}

void check_clip_projection(const std::string& dir) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto f = load_clip_fixture(dir);
  CLIPTextModelWithProjection model(f.config);
  REQUIRE(model->text_projection->weight.sizes() == at::IntArrayRef({f.config.projection_dim, f.config.hidden_size}));
  TensorMap weights = f.weights;
  torch::manual_seed(3);
  auto projection = torch::randn({f.config.projection_dim, f.config.hidden_size});
  weights["text_projection.weight"] = projection;
  LoadOptions options;
  load_state_dict(*model, weights, options);
  auto input_ids = f.inputs.at(f.meta["calls"][0]["args"]["input_ids"].get<std::string>());
  auto out = model(input_ids);
  A2A_CHECK_CLOSE(out.pooler_output, f.outputs.at("pooler_output"), 1e-4);
  A2A_CHECK_CLOSE(out.text_embeds, torch::matmul(f.outputs.at("pooler_output"), projection.t()), 1e-4);
}

}  // namespace

TEST_CASE("CLIPTextModel matches transformers on the fixture", "[clip_text]") {
  A2A_REQUIRE_FIXTURE(std::string(kSharedClipFixture) + "/model.safetensors");
  check_clip_parity(test::fixture_path(kSharedClipFixture));
}

TEST_CASE("CLIPTextModel matches transformers on the variant (gelu, eos pooling by id)", "[clip_text]") {
  check_clip_parity(clip_variant_dir());
}

TEST_CASE("clip_skip takes an earlier layer through final_layer_norm", "[clip_text]") {
  A2A_REQUIRE_FIXTURE(std::string(kSharedClipFixture) + "/model.safetensors");
  check_clip_skip(test::fixture_path(kSharedClipFixture));
}

TEST_CASE("clip_skip takes an earlier layer through final_layer_norm (variant)", "[clip_text]") {
  check_clip_skip(clip_variant_dir());
}

TEST_CASE("CLIPTextModelWithProjection projects the pooled state", "[clip_text]") {
  A2A_REQUIRE_FIXTURE(std::string(kSharedClipFixture) + "/model.safetensors");
  check_clip_projection(test::fixture_path(kSharedClipFixture));
}

TEST_CASE("CLIPTextModelWithProjection projects the pooled state (variant)", "[clip_text]") {
  check_clip_projection(clip_variant_dir());
}

TEST_CASE("CLIP pooling follows the eos rule of the config", "[clip_text]") {
  CLIPTextConfig config;
  config.vocab_size = 50;
  config.hidden_size = 8;
  config.intermediate_size = 16;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.max_position_embeddings = 8;
  auto ids = torch::tensor({3, 49, 7, 20, 20, 20}, torch::kLong).view({1, 6});
  config.eos_token_id = 2;  // legacy rule: position of the largest id
  CHECK(CLIPTextTransformer(config)->eos_positions(ids).item<int64_t>() == 1);
  config.eos_token_id = 20;  // the first position holding eos
  CHECK(CLIPTextTransformer(config)->eos_positions(ids).item<int64_t>() == 3);
}

namespace {

void check_clip_layout(const std::string& config_file, const std::string& keys_file) {
  A2A_REQUIRE_FIXTURE(config_file);
  A2A_REQUIRE_FIXTURE(keys_file);
  INFO(config_file);
  auto config = CLIPTextConfig::from_json(test::read_json(test::fixture_path(config_file)));
  CLIPTextModel model(config);
  auto ours = parameter_shapes(*model);
  auto ref = read_key_list(test::fixture_path(keys_file), "param");
  CHECK(first_difference(ours, ref) == "");
  CHECK(ours.size() == ref.size());
  // 4.43 computes position_ids instead of storing it; older checkpoints that hold it must still load.
  auto harmless = [](const std::string& name) {
    return std::any_of(known_harmless_unexpected_keys().begin(), known_harmless_unexpected_keys().end(),
                       [&](const std::string& pattern) { return key_matches(pattern, name); });
  };
  for (const auto& kv : read_key_list(test::fixture_path(keys_file), "buffer")) {
    INFO(kv.first);
    CHECK(harmless(kv.first));
  }
  CHECK(harmless("text_model.embeddings.position_ids"));
}

}  // namespace

TEST_CASE("CLIP text encoder builds with Stable Diffusion 1.5's layout", "[clip_text]") {
  check_clip_layout("hf_layouts/stable-diffusion-v1-5/text_encoder/config.json", "keys/sd15_text_encoder.txt");
}

TEST_CASE("CLIP text encoder builds with OpenCLIP-H's layout (gelu, 23 layers)", "[.slow][clip_text_layouts]") {
  check_clip_layout("hf_layouts/text-to-video-ms-1.7b/text_encoder/config.json", "keys/ms17b_text_encoder.txt");
}

TEST_CASE("CLIP text model rejects bad inputs with clear errors", "[clip_text]") {
  CLIPTextConfig config;
  config.vocab_size = 10;
  config.hidden_size = 8;
  config.intermediate_size = 16;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.max_position_embeddings = 4;
  CLIPTextModel model(config);
  CHECK_THROWS_AS(model(torch::zeros({1, 5}, torch::kLong)), a2a::Error);     // too long
  CHECK_THROWS_AS(model(torch::full({1, 3}, 10, torch::kLong)), a2a::Error);  // out of vocabulary
  CHECK_THROWS_AS(model(torch::zeros({3}, torch::kLong)), a2a::Error);        // not [B, L]
  nlohmann::json bad = {{"hidden_size", 10}, {"num_attention_heads", 3}};
  CHECK_THROWS_AS(CLIPTextConfig::from_json(bad), a2a::Error);
}

// ---- clip_text_encoder stage ----

namespace {

std::unique_ptr<Stage> make_clip_stage(Json given, ModuleCache* cache) {
  const StageInfo* info = StageRegistry::global().find("clip_text_encoder");
  REQUIRE(info != nullptr);
  Json params = Json::object();
  for (const auto& spec : info->params) params[spec.name] = spec.default_value;
  for (const auto& kv : given.items()) params[kv.key()] = kv.value();
  ConfigureContext ctx;
  ctx.modules = cache;
  auto stage = info->create();
  stage->configure(params, ctx);
  return stage;
}

}  // namespace

TEST_CASE("clip_text_encoder's tiny preset encodes bytes with a padded mask", "[clip_text]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  auto stage = make_clip_stage(Json::object(), &cache);
  RunContext run;
  const std::string prompt = "a red fox";
  auto out = stage->run({{"text", Value::text(prompt)}}, run);
  const auto& embedding = out.at("embedding");
  REQUIRE(embedding.type() == ValueType::Embedding);
  REQUIRE(embedding.tensor().dim() == 3);
  CHECK(embedding.tensor().size(0) == 1);
  CHECK(embedding.tensor().size(1) == 77);
  const int64_t width = embedding.tensor().size(2);
  const int64_t real_tokens = static_cast<int64_t>(prompt.size()) + 2;
  CHECK(embedding.mask().sum().item<int64_t>() == real_tokens);
  // Pooled = the final state at the end token, which follows the prompt's bytes.
  A2A_CHECK_CLOSE(out.at("pooled").tensor(), embedding.tensor().select(1, real_tokens - 1), 1e-6);
  CHECK(out.at("pooled").tensor().sizes() == at::IntArrayRef({1, width}));
  CHECK(out.at("negative_embedding").tensor().sizes() == embedding.tensor().sizes());
  CHECK(out.at("negative_embedding").mask().sum().item<int64_t>() == 2);

  // The ids are the bytes between start (256) and end (257), padded with 257.
  auto& model = dynamic_cast<CLIPTextModelImpl&>(*stage->module());
  std::vector<int64_t> ids = {256};
  for (unsigned char c : prompt) ids.push_back(c);
  ids.resize(77, 257);
  auto reference = model.forward(torch::tensor(ids, torch::kLong).view({1, 77}));
  A2A_CHECK_CLOSE(embedding.tensor(), reference.last_hidden_state, 1e-6);

  auto skipping = make_clip_stage({{"clip_skip", 1}}, &cache);
  CHECK(skipping->module() == stage->module());
  auto skipped = skipping->run({{"text", Value::text(prompt)}}, run);
  A2A_CHECK_CLOSE(skipped.at("embedding").tensor(),
                  clip_prompt_embedding(*model.text_model, torch::tensor(ids, torch::kLong).view({1, 77}), 1), 1e-6);
  CHECK_FALSE(torch::allclose(skipped.at("embedding").tensor(), embedding.tensor()));
  A2A_CHECK_CLOSE(skipped.at("pooled").tensor(), out.at("pooled").tensor(), 1e-6);

  CHECK_THROWS_AS(make_clip_stage({{"clip_skip", 3}}, &cache), a2a::Error);
}

namespace {

// Writes a model folder: the fixture's config and weights beside a small CLIP vocabulary (no merges) whose start
// and end tokens are the fixture's bos/eos ids and whose other entries are the 256 byte characters and their
// word-final forms, on the ids in [0, vocab_size) that are not start/end (wrapping around when there are fewer
// than 512; tokens may then share an id). Returns the id of each byte's two forms through `byte_id`.
struct ClipVocabulary {
  int64_t start = 0, end = 0;
  std::vector<int64_t> ordinary;
  int64_t byte_id(unsigned char byte, bool word_end) const {
    return ordinary[(static_cast<size_t>(byte) + (word_end ? 256 : 0)) % ordinary.size()];
  }
};

ClipVocabulary write_clip_folder(const std::string& dir, const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  const auto config = test::read_json(dir + "/config.json");
  const auto parsed = CLIPTextConfig::from_json(config);
  ClipVocabulary v;
  v.start = config.at("bos_token_id").get<int64_t>();
  // eos_token_id 2 is the legacy config whose real end token is the largest id (pooling takes the argmax).
  v.end = parsed.eos_token_id == 2 ? parsed.vocab_size - 1 : parsed.eos_token_id;
  for (int64_t id = 0; id < parsed.vocab_size; ++id)
    if (id != v.start && id != v.end) v.ordinary.push_back(id);
  fs::create_directories(folder);
  fs::copy_file(dir + "/config.json", folder / "config.json", fs::copy_options::overwrite_existing);
  fs::remove(folder / "model.safetensors");
  fs::create_symlink(dir + "/model.safetensors", folder / "model.safetensors");
  nlohmann::json vocab = nlohmann::json::object();
  const auto& byte_chars = unicode::byte_to_code_point();
  for (int b = 0; b < 256; ++b) {
    vocab[unicode::to_utf8(byte_chars[b])] = v.byte_id(static_cast<unsigned char>(b), false);
    vocab[unicode::to_utf8(byte_chars[b]) + "</w>"] = v.byte_id(static_cast<unsigned char>(b), true);
  }
  vocab["<|startoftext|>"] = v.start;
  vocab["<|endoftext|>"] = v.end;
  std::ofstream(folder / "vocab.json") << vocab.dump();
  std::ofstream(folder / "merges.txt") << "#version: 0.2\n";
  return v;
}

void check_clip_tokenizer_folder(const std::string& dir, const std::string& name) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto f = load_clip_fixture(dir);
  namespace fs = std::filesystem;
  fs::path folder = fs::path(test::scratch_dir()) / name;
  const ClipVocabulary v = write_clip_folder(dir, folder);

  ModuleCache cache;
  const int64_t length = f.config.max_position_embeddings;
  auto stage = make_clip_stage({{"model", folder.string()}, {"max_length", length}}, &cache);
  RunContext run;
  auto out = stage->run({{"text", Value::text("Ab c")}}, run);
  // Lower-cased words; the last byte of each word takes its "</w>" form.
  std::vector<int64_t> ids = {v.start, v.byte_id('a', false), v.byte_id('b', true), v.byte_id('c', true), v.end};
  ids.resize(static_cast<size_t>(length), v.end);
  CLIPTextModel model(f.config);
  load_state_dict(*model, f.weights);
  auto reference = model->forward(torch::tensor(ids, torch::kLong).view({1, length}));
  A2A_CHECK_CLOSE(out.at("embedding").tensor(), reference.last_hidden_state, 1e-6);
  A2A_CHECK_CLOSE(out.at("pooled").tensor(), reference.pooler_output, 1e-6);
  // The pooled state is the final state at the end token (position 4).
  A2A_CHECK_CLOSE(out.at("pooled").tensor(), reference.last_hidden_state.select(1, 4), 1e-6);
  CHECK(out.at("embedding").mask().sum().item<int64_t>() == 5);

  CHECK_THROWS_AS(make_clip_stage({{"model", folder.string()}, {"max_length", length + 1}}, &cache), a2a::Error);
  CHECK_THROWS_AS(make_clip_stage({{"model", (folder / "missing").string()}}, &cache), a2a::Error);
}

}  // namespace

TEST_CASE("clip_text_encoder loads a transformers folder with its CLIP tokenizer", "[clip_text]") {
  A2A_REQUIRE_FIXTURE(std::string(kSharedClipFixture) + "/model.safetensors");
  check_clip_tokenizer_folder(test::fixture_path(kSharedClipFixture), "clip_text_folder");
}

TEST_CASE("clip_text_encoder loads a transformers folder with its CLIP tokenizer (variant)", "[clip_text]") {
  check_clip_tokenizer_folder(clip_variant_dir(), "clip_text_folder_variant");
}
