// Hugging Face layouts: real config files, variants, pickle refusal, typed config reading, inspect.
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "test_support.h"
#include "weights/checkpoint_inspect.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

using a2a::test::fresh_dir;

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

template <typename Fn>
a2a::Error expect_layout_error(Fn&& fn, const std::string& code) {
  try {
    fn();
  } catch (const a2a::Error& e) {
    INFO(e.message());
    CHECK(e.code() == code);
    return e;
  }
  FAIL("expected an error with code " << code);
  throw std::logic_error("unreachable");
}

const char* const kPipelines[] = {"stable-diffusion-v1-5", "audioldm-s-full-v2", "text-to-video-ms-1.7b"};

}  // namespace

TEST_CASE("every real configuration file parses", "[hf_layout]") {
  A2A_REQUIRE_FIXTURE("hf_layouts");
  size_t parsed = 0;
  for (const auto& entry : fs::recursive_directory_iterator(a2a::test::fixture_path("hf_layouts"))) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    INFO(entry.path().string());
    nlohmann::json config = a2a::read_config_json(entry.path().string());
    CHECK(config.is_object());
    CHECK_FALSE(config.empty());
    ++parsed;
  }
  CHECK(parsed >= 3 * 5);  // each pipeline has an index and at least four component configs
}

TEST_CASE("model_index.json names components that exist as folders", "[hf_layout]") {
  A2A_REQUIRE_FIXTURE("hf_layouts");
  for (const char* name : kPipelines) {
    INFO(name);
    const std::string folder = a2a::test::fixture_path(std::string("hf_layouts/") + name);
    nlohmann::json raw = a2a::test::read_json(folder + "/model_index.json");
    a2a::PipelineIndex index = a2a::read_model_index(folder);
    CHECK(index.class_name == raw["_class_name"].get<std::string>());
    CHECK(index.diffusers_version == raw["_diffusers_version"].get<std::string>());
    size_t listed = 0;
    for (auto it = raw.begin(); it != raw.end(); ++it) listed += it.key()[0] != '_' && it.value().is_array();
    REQUIRE(index.components.size() == listed);
    for (const auto& component : index.components) {
      INFO(component.name);
      CHECK(component.library == raw[component.name][0].get<std::string>());
      CHECK(component.class_name == raw[component.name][1].get<std::string>());
      CHECK(fs::is_directory(folder + "/" + component.name));
    }

    a2a::CheckpointLayout layout = a2a::detect_layout(folder);
    CHECK(layout.kind == a2a::LayoutKind::DiffusersPipeline);
    REQUIRE(layout.components.size() == index.components.size());
    for (const auto& [component, sub] : layout.components) {
      INFO(component.name);
      if (component.class_name.find("Scheduler") != std::string::npos) {
        CHECK(sub.kind == a2a::LayoutKind::Scheduler);
        CHECK(sub.class_name == component.class_name);
      } else if (component.name == "tokenizer") {
        CHECK(sub.kind == a2a::LayoutKind::Tokenizer);
      } else if (component.name == "feature_extractor") {
        CHECK(sub.kind == a2a::LayoutKind::Processor);
      } else if (component.library == "diffusers") {
        CHECK(sub.kind == a2a::LayoutKind::DiffusersModel);
        CHECK(sub.class_name == component.class_name);
        CHECK(sub.weights.empty());  // configuration files only
      } else if (component.library == "transformers" && fs::exists(sub.path + "/config.json")) {
        CHECK(sub.kind == a2a::LayoutKind::TransformersModel);
      }
    }
  }
}

TEST_CASE("typed config getters read real configs and name what is wrong", "[hf_layout]") {
  A2A_REQUIRE_FIXTURE("hf_layouts/stable-diffusion-v1-5/unet/config.json");
  const std::string path = a2a::test::fixture_path("hf_layouts/stable-diffusion-v1-5/unet/config.json");
  const nlohmann::json raw = a2a::test::read_json(path);
  auto config = a2a::ConfigReader::from_file(path);

  auto channels = config.require<std::vector<int64_t>>("block_out_channels");
  CHECK(channels == raw["block_out_channels"].get<std::vector<int64_t>>());
  CHECK(config.get<std::string>("act_fn", "none") == raw["act_fn"].get<std::string>());
  CHECK(config.get<double>("norm_eps", 0.0) == raw["norm_eps"].get<double>());
  CHECK(config.get<int>("no_such_field", 42) == 42);
  auto heads = config.get_per_block<int64_t>("attention_head_dim", channels.size(), 0);
  REQUIRE(heads.size() == channels.size());
  if (raw["attention_head_dim"].is_number()) CHECK(heads[0] == raw["attention_head_dim"].get<int64_t>());

  // Fields the struct declares keep their initializer when absent; null fits an optional.
  int in_channels = -1;
  std::optional<int64_t> num_class_embeds = 7;
  config.read("in_channels", in_channels);
  CHECK(in_channels == raw["in_channels"].get<int>());
  std::optional<int64_t> absent = 3;
  config.read("no_such_field", absent);
  CHECK(absent == 3);
  if (raw.contains("num_class_embeds") && raw["num_class_embeds"].is_null()) {
    config.read("num_class_embeds", num_class_embeds);
    CHECK_FALSE(num_class_embeds.has_value());
  }

  auto wrong = expect_layout_error([&] { config.get<int>("act_fn", 0); }, "bad_config");
  CHECK(wrong.message().find(path) != std::string::npos);
  CHECK(wrong.message().find("'act_fn' must be an integer, not the string") != std::string::npos);
  auto list =
      expect_layout_error([&] { config.get<std::vector<std::string>>("block_out_channels", {}); }, "bad_config");
  CHECK(list.message().find("'block_out_channels[0]' must be a string") != std::string::npos);
  auto length = expect_layout_error(
      [&] { config.get_per_block<int64_t>("block_out_channels", channels.size() + 1, 0); }, "bad_config");
  CHECK(length.message().find("entries") != std::string::npos);
  expect_layout_error([&] { config.require<int>("no_such_field"); }, "bad_config");

  a2a::ConfigReader synthetic(nlohmann::json::parse(R"({"a": 16000.0, "b": 1.5, "c": null, "d": true,
      "sub": {"hidden_size": "big"}, "nested": [[1, 3, 5], [1, 3, 5]]})"),
                              "synthetic.json");
  CHECK(synthetic.get<int>("a", 0) == 16000);  // a whole number written as a float
  CHECK(expect_layout_error([&] { synthetic.get<int>("b", 0); }, "bad_config")
            .message()
            .find("'b' must be an integer, not 1.5") != std::string::npos);
  CHECK(expect_layout_error([&] { synthetic.get<int>("c", 0); }, "bad_config").message().find("not null") !=
        std::string::npos);
  CHECK_FALSE(synthetic.get_optional<int>("c").has_value());
  CHECK(expect_layout_error([&] { synthetic.get<double>("d", 0); }, "bad_config").message().find("not true") !=
        std::string::npos);
  CHECK(expect_layout_error([&] { synthetic.child("sub").require<int>("hidden_size"); }, "bad_config")
            .message()
            .find("'sub.hidden_size'") != std::string::npos);
  CHECK(synthetic.get<std::vector<std::vector<int>>>("nested", {}) ==
        std::vector<std::vector<int>>{{1, 3, 5}, {1, 3, 5}});
}

TEST_CASE("config.json errors name the file", "[hf_layout]") {
  const std::string dir = fresh_dir("bad_config");
  write_text(dir + "/config.json", "{\"hidden_size\": 32,\n \"vocab_size\": }");
  auto e = expect_layout_error([&] { a2a::read_config_json(dir); }, "bad_config");
  CHECK(e.message().find(dir + "/config.json") != std::string::npos);
  CHECK(e.message().find("not valid JSON") != std::string::npos);
  write_text(dir + "/config.json", "[1, 2]");
  expect_layout_error([&] { a2a::read_config_json(dir); }, "bad_config");
  expect_layout_error([&] { a2a::read_config_json(dir + "/missing"); }, "missing_config");
  write_text(dir + "/config.json", "{\"a\": " + std::string(1000000, '[') + std::string(1000000, ']') + "}");
  e = expect_layout_error([&] { a2a::read_config_json(dir); }, "json_too_deep");
  CHECK(e.message().find(dir + "/config.json") != std::string::npos);
  CHECK(e.message().find("deeper than 256 levels") != std::string::npos);
  write_text(dir + "/config.json", "{\"a\": " + std::string(256, '[') + std::string(256, ']') + "}");
  expect_layout_error([&] { a2a::read_config_json(dir); }, "json_too_deep");  // 257 levels with the outer object
  write_text(dir + "/config.json", "{\"a\": \"" + std::string(1000, '[') + "\", \"b\": " + std::string(255, '[') +
                                       std::string(255, ']') + "}");
  CHECK(a2a::read_config_json(dir).size() == 2);  // brackets in strings do not nest
  // A number too large for a double is not a parse_error to nlohmann (found by the config_json fuzzer).
  write_text(dir + "/config.json", "{\"hidden_size\": 4e+444}");
  e = expect_layout_error([&] { a2a::read_config_json(dir); }, "bad_config");
  CHECK(e.message().find("number overflow") != std::string::npos);
}

TEST_CASE("component weights: plain, fp16 variant, sharded, missing", "[hf_layout]") {
  const std::string dir = fresh_dir("variants");
  const fs::path unet = fs::path(dir) / "unet";
  write_text(unet / "config.json", R"({"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.29.2"})");
  at::Tensor w = at::randn({4, 4});
  a2a::save_safetensors((unet / "diffusion_pytorch_model.safetensors").string(), {{"w", w}});
  a2a::save_safetensors((unet / "diffusion_pytorch_model.fp16.safetensors").string(), {{"w", w.to(at::kHalf)}});

  CHECK(fs::path(a2a::find_weights_file(unet.string())).filename() == "diffusion_pytorch_model.safetensors");
  CHECK(fs::path(a2a::find_weights_file(unet.string(), "fp16")).filename() ==
        "diffusion_pytorch_model.fp16.safetensors");
  auto layout = a2a::detect_layout(unet.string(), "fp16");
  CHECK(layout.kind == a2a::LayoutKind::DiffusersModel);
  CHECK(layout.class_name == "UNet2DConditionModel");
  CHECK(a2a::SafeTensorsFile::open(layout.weights)->record("w").dtype == "F16");

  auto missing = expect_layout_error([&] { a2a::find_weights_file(unet.string(), "ema"); }, "missing_weights");
  CHECK(missing.message().find("diffusion_pytorch_model.ema.safetensors") != std::string::npos);
  CHECK(missing.message().find("fp16") != std::string::npos);

  // Only the variant present: asking for none says which variant there is.
  fs::remove(unet / "diffusion_pytorch_model.safetensors");
  auto only_variant = expect_layout_error([&] { a2a::find_weights_file(unet.string()); }, "missing_weights");
  CHECK(only_variant.message().find("fp16") != std::string::npos);

  // A sharded fp16 variant: the index is named as _add_variant names it.
  const fs::path text_encoder = fs::path(dir) / "text_encoder";
  write_text(text_encoder / "config.json", R"({"architectures": ["CLIPTextModel"], "transformers_version": "4.43.0"})");
  std::map<std::string, at::Tensor> shards = {{"a", at::randn({64})}, {"b", at::randn({64})}};
  const std::string index = a2a::save_safetensors_sharded(text_encoder.string(), "model.fp16", shards, 256);
  fs::rename(index, text_encoder / "model.safetensors.index.fp16.json");
  auto sharded = a2a::detect_layout(text_encoder.string(), "fp16");
  CHECK(sharded.kind == a2a::LayoutKind::TransformersModel);
  CHECK(sharded.class_name == "CLIPTextModel");
  CHECK(fs::path(sharded.weights).filename() == "model.safetensors.index.fp16.json");
  CHECK(a2a::SafeTensorsCheckpoint::open(sharded.weights)->files().size() == 2);
  const std::string listing = a2a::inspect_checkpoint(sharded.weights);
  CHECK(listing.find("layout: sharded safetensors") != std::string::npos);
  CHECK(listing.find("shards: 2") != std::string::npos);
  CHECK(listing.find("total_size: " + std::to_string(2 * 64 * 4)) != std::string::npos);
  CHECK(listing.find("totals: 2 tensors, 128 parameters, 512 bytes") != std::string::npos);

  write_text(fs::path(dir) / "tokenizer.json", "{}");
  expect_layout_error([&] { a2a::detect_layout(dir + "/tokenizer.json"); }, "unknown_layout");
}

TEST_CASE("pickle checkpoints are refused with the conversion recipe", "[hf_layout]") {
  const std::string dir = fresh_dir("pickle");
  const std::string ckpt = dir + "/v1-5-pruned.ckpt";
  std::ofstream(ckpt, std::ios::binary) << "PK\x03\x04 zip archive written by torch.save";
  auto e = expect_layout_error([&] { a2a::detect_layout(ckpt); }, "pickle_checkpoint");
  CHECK(e.message().find(ckpt) != std::string::npos);
  CHECK(e.message().find("torch.load") != std::string::npos);
  CHECK(e.message().find("save_file") != std::string::npos);
  CHECK(e.message().find(dir + "/v1-5-pruned.safetensors") != std::string::npos);
  expect_layout_error([&] { a2a::inspect_checkpoint(ckpt); }, "pickle_checkpoint");

  // A transformers folder with only pytorch_model.bin: the recipe names model.safetensors.
  const fs::path folder = fs::path(dir) / "clip";
  write_text(folder / "config.json", R"({"architectures": ["CLIPTextModel"]})");
  std::ofstream(folder / "pytorch_model.bin", std::ios::binary) << "\x80\x02}q\x00.";
  auto folder_error = expect_layout_error([&] { a2a::find_weights_file(folder.string()); }, "pickle_checkpoint");
  CHECK(folder_error.message().find((folder / "model.safetensors").string()) != std::string::npos);
  expect_layout_error([&] { a2a::detect_layout(folder.string()); }, "pickle_checkpoint");

  for (const char* ext : {".pt", ".pth", ".bin"}) {
    const std::string file = dir + "/weights" + ext;
    std::ofstream(file, std::ios::binary) << "\x80\x04\x95 pickle protocol 4";
    CHECK(a2a::is_pickle_checkpoint(file));
  }
  // llama2.c's .bin is a flat binary format, not pickle.
  const std::string flat = dir + "/stories.bin";
  std::ofstream(flat, std::ios::binary) << std::string("\x40\x00\x00\x00\x00\x01\x00\x00", 8);
  CHECK_FALSE(a2a::is_pickle_checkpoint(flat));
}

TEST_CASE("inspect lists a reference checkpoint's tensors and totals", "[hf_layout]") {
  A2A_REQUIRE_FIXTURE("clip_text_model/model.safetensors");
  const std::string folder = a2a::test::fixture_path("clip_text_model");
  const std::string file = folder + "/model.safetensors";
  auto meta = a2a::test::read_json(folder + "/meta.json");
  auto config = a2a::test::read_json(folder + "/config.json");
  const int64_t vocab = config["vocab_size"].get<int64_t>(), hidden = config["hidden_size"].get<int64_t>();

  nlohmann::json j = a2a::inspect_checkpoint_json(file);
  CHECK(j["layout_kind"] == "safetensors_file");
  REQUIRE(j["checkpoints"].size() == 1);
  const auto& c = j["checkpoints"][0];
  CHECK(c["totals"]["tensors"].get<size_t>() == meta["state_dict_keys"].get<size_t>());
  CHECK(c["totals"]["parameters"].get<int64_t>() == meta["num_parameters"].get<int64_t>());
  CHECK(c["totals"]["bytes"].get<int64_t>() == 4 * meta["num_parameters"].get<int64_t>());  // F32
  CHECK(c["metadata"]["format"] == "pt");
  bool found_embedding = false;
  for (const auto& t : c["tensors"]) {
    if (t["name"] != "text_model.embeddings.token_embedding.weight") continue;
    found_embedding = true;
    CHECK(t["dtype"] == "F32");
    CHECK(t["shape"] == nlohmann::json({vocab, hidden}));
  }
  CHECK(found_embedding);

  const std::string text = a2a::inspect_checkpoint(file);
  CHECK(text.find("layout: safetensors file") != std::string::npos);
  CHECK(text.find("format: pt") != std::string::npos);
  CHECK(text.find("text_model.embeddings.token_embedding.weight") != std::string::npos);
  CHECK(text.find("[" + std::to_string(vocab) + ", " + std::to_string(hidden) + "]") != std::string::npos);
  CHECK(text.find("totals: " + std::to_string(meta["state_dict_keys"].get<size_t>()) + " tensors") !=
        std::string::npos);
  for (const auto& t : c["tensors"]) CHECK(text.find(t["name"].get<std::string>()) != std::string::npos);

  // The folder: a transformers model with its config.
  nlohmann::json from_folder = a2a::inspect_checkpoint_json(folder);
  CHECK(from_folder["layout_kind"] == "transformers_model");
  CHECK(from_folder["class"] == config["architectures"][0]);
  CHECK(from_folder["totals"] == c["totals"]);
}

TEST_CASE("inspect lists a pipeline folder by component", "[hf_layout]") {
  const std::string dir = fresh_dir("pipeline");
  const fs::path root(dir);
  write_text(root / "model_index.json", R"({"_class_name": "TinyPipeline", "_diffusers_version": "0.29.2",
      "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"],
      "safety_checker": [null, null], "requires_safety_checker": false})");
  write_text(root / "unet/config.json", R"({"_class_name": "UNet2DConditionModel"})");
  a2a::save_safetensors(
      (root / "unet/diffusion_pytorch_model.fp16.safetensors").string(),
      {{"conv_in.weight", at::zeros({8, 4, 3, 3}, at::kHalf)}, {"conv_in.bias", at::zeros({8}, at::kHalf)}});
  write_text(root / "scheduler/scheduler_config.json", R"({"_class_name": "DDIMScheduler"})");

  nlohmann::json j = a2a::inspect_checkpoint_json(dir, "fp16");
  CHECK(j["layout_kind"] == "diffusers_pipeline");
  CHECK(j["class"] == "TinyPipeline");
  REQUIRE(j["checkpoints"].size() == 3);
  CHECK(j["totals"]["tensors"] == 2);
  CHECK(j["totals"]["parameters"] == 8 * 4 * 3 * 3 + 8);
  CHECK(j["totals"]["dtypes"]["F16"] == 2);
  CHECK(j["pipeline"]["options"]["requires_safety_checker"] == false);

  const std::string text = a2a::inspect_checkpoint(dir, "fp16");
  CHECK(text.find("TinyPipeline") != std::string::npos);
  CHECK(text.find("unet") != std::string::npos);
  CHECK(text.find("conv_in.weight") != std::string::npos);
  CHECK(text.find("[8, 4, 3, 3]") != std::string::npos);
  CHECK(text.find("safety_checker") != std::string::npos);
  expect_layout_error([&] { a2a::inspect_checkpoint(dir); }, "missing_weights");  // only an fp16 variant

  A2A_REQUIRE_FIXTURE("hf_layouts/stable-diffusion-v1-5/model_index.json");
  const std::string sd = a2a::inspect_checkpoint(a2a::test::fixture_path("hf_layouts/stable-diffusion-v1-5"));
  CHECK(sd.find("StableDiffusionPipeline") != std::string::npos);
  CHECK(sd.find("UNet2DConditionModel") != std::string::npos);
  CHECK(sd.find("no weights") != std::string::npos);
}
