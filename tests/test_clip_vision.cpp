// CLIP vision encoder: parity with transformers' CLIPVisionModelWithProjection, the ViT-L/14 layout, strict
// loading, preprocessor_config.json, and the clip_vision_encoder stage.
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "encoders/clip_vision_model.h"
#include "media/image_preprocess.h"
#include "stage_runner.h"
#include "stages/image_processor_config.h"
#include "test_support.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

namespace fs = std::filesystem;

const char* const kVisionFixture = "clip_vision_model_with_projection";

struct VisionFixture {
  std::string dir;
  nlohmann::json config_json, meta;
  CLIPVisionConfig config;
  TensorMap weights, inputs, outputs;
  at::Tensor pixel_values() const { return inputs.at(meta["calls"][0]["args"]["pixel_values"].get<std::string>()); }
};

VisionFixture load_vision_fixture(const std::string& dir) {
  VisionFixture f;
  f.dir = dir;
  f.config_json = test::read_json(dir + "/config.json");
  f.config = CLIPVisionConfig::from_json(f.config_json);
  f.meta = test::read_json(dir + "/meta.json");
  f.weights = load_safetensors(dir + "/model.safetensors");
  f.inputs = load_safetensors(dir + "/inputs.safetensors");
  f.outputs = load_safetensors(dir + "/outputs.safetensors");
  return f;
}

template <typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// |ours - ref| <= suggested_atol + suggested_rtol * |ref| element by element, with the meta.json tolerance of
// that output (the README's bound 1e-4 * max(1, max |ref|) when meta.json gives none).
void check_output(const VisionFixture& f, const std::string& name, const at::Tensor& ours) {
  INFO(f.dir << ": " << name);
  const at::Tensor& ref = f.outputs.at(name);
  REQUIRE(ours.sizes() == ref.sizes());
  auto diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs();
  at::Tensor bound;
  if (f.meta.contains("tolerance") && f.meta["tolerance"].contains(name)) {
    const auto& tol = f.meta["tolerance"][name];
    bound = tol.at("suggested_atol").get<double>() + tol.at("suggested_rtol").get<double>() * ref.to(at::kDouble).abs();
  } else {
    bound = at::full_like(diff, 1e-4 * std::max(1.0, ref.abs().max().item<double>()));
  }
  const double max_diff = diff.max().item<double>();
  const double worst = (diff - bound).max().item<double>();
  std::cout << f.meta.value("fixture", f.dir) << " " << name << ": max abs diff " << max_diff << " (smallest bound "
            << bound.min().item<double>() << ")" << std::endl;
  CHECK(worst <= 0.0);
}

CLIPVisionModelWithProjection load_fixture_model(const VisionFixture& f) {
  CLIPVisionModelWithProjection model(f.config);
  LoadOptions options;
  options.source = f.dir + "/model.safetensors";
  load_state_dict(*model, f.weights, options);
  model->eval();
  return model;
}

int64_t hidden_index(const std::string& name) { return std::stoll(name.substr(std::string("hidden_states_").size())); }

void check_vision_parity(const std::string& dir) {
  torch::NoGradGuard no_grad;
  const auto f = load_vision_fixture(dir);
  auto model = load_fixture_model(f);
  const auto& call = f.meta["calls"][0];
  REQUIRE(call["method"] == "forward");
  const bool hidden_states = call["kwargs"].value("output_hidden_states", false);
  const auto out = model->forward(f.pixel_values(), hidden_states);
  for (const auto& kv : call["outputs"].items()) {
    const std::string& name = kv.key();
    if (name == "image_embeds") {
      check_output(f, name, out.image_embeds);
    } else if (name == "last_hidden_state") {
      check_output(f, name, out.last_hidden_state);
    } else if (name == "pooler_output") {
      check_output(f, name, out.pooler_output);
    } else if (name.rfind("hidden_states_", 0) == 0) {
      const int64_t index = hidden_index(name);
      REQUIRE(index < static_cast<int64_t>(out.hidden_states.size()));
      check_output(f, name, out.hidden_states[index]);
    } else {
      FAIL("unknown output " << name);
    }
  }
  if (hidden_states) CHECK(out.hidden_states.size() == static_cast<size_t>(f.config.num_hidden_layers + 1));
  // image_embeds = visual_projection(post_layernorm(CLS of last_hidden_state)), from the recorded state.
  auto& vision = *model->vision_model;
  auto pooled = vision.post_layernorm->forward(f.outputs.at("last_hidden_state").select(1, 0));
  check_output(f, "image_embeds", model->visual_projection(pooled));
}

}  // namespace

TEST_CASE("CLIPVisionModelWithProjection matches transformers on the fixture", "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/model.safetensors");
  check_vision_parity(test::fixture_path(kVisionFixture));
}

TEST_CASE("CLIP vision hidden_state(K) runs only the layers it needs, negative K from the end", "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/model.safetensors");
  torch::NoGradGuard no_grad;
  const auto f = load_vision_fixture(test::fixture_path(kVisionFixture));
  auto model = load_fixture_model(f);
  auto& vision = *model->vision_model;
  const int64_t layers = f.config.num_hidden_layers;
  int64_t checked = 0;
  for (const auto& kv : f.meta["calls"][0]["outputs"].items()) {
    if (kv.key().rfind("hidden_states_", 0) != 0) continue;
    const int64_t k = hidden_index(kv.key());
    check_output(f, kv.key(), vision.hidden_state(f.pixel_values(), k));
    check_output(f, kv.key(), vision.hidden_state(f.pixel_values(), k - layers - 1));
    ++checked;
  }
  CHECK(checked == layers + 1);
  check_output(f, "last_hidden_state", vision.hidden_state(f.pixel_values(), -1));
  CHECK(test::error_code([&] { vision.hidden_state(f.pixel_values(), layers + 1); }) == "bad_hidden_layer");
  CHECK(test::error_code([&] { vision.hidden_state(f.pixel_values(), -layers - 2); }) == "bad_hidden_layer");
}

TEST_CASE("CLIPVisionModel without projection: same states, pooled output, strict about visual_projection",
          "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/model.safetensors");
  torch::NoGradGuard no_grad;
  const auto f = load_vision_fixture(test::fixture_path(kVisionFixture));
  CLIPVisionModel model(f.config);
  // The projection is unexpected here, and named.
  const std::string message = error_message([&] { load_state_dict(*model, f.weights); });
  CHECK(message.find("visual_projection.weight") != std::string::npos);
  TensorMap weights = f.weights;
  weights.erase("visual_projection.weight");
  load_state_dict(*model, weights);
  const auto out = model->forward(f.pixel_values());
  check_output(f, "last_hidden_state", out.last_hidden_state);
  auto with_projection = load_fixture_model(f);
  A2A_CHECK_CLOSE(with_projection->visual_projection(out.pooler_output), f.outputs.at("image_embeds"), 1e-4);
}

TEST_CASE("CLIP vision config: a full CLIPConfig's vision_config, defaults, bad values", "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/config.json");
  const auto vision = test::read_json(test::fixture_path(std::string(kVisionFixture) + "/config.json"));
  const auto direct = CLIPVisionConfig::from_json(vision);
  nlohmann::json inner = vision;
  inner.erase("projection_dim");
  const nlohmann::json full = {{"model_type", "clip"},
                               {"projection_dim", direct.projection_dim},
                               {"text_config", {{"hidden_size", 8}}},
                               {"vision_config", inner}};
  const auto nested = CLIPVisionConfig::from_json(full);
  CHECK(nested.to_json() == direct.to_json());
  // vision_config's own projection_dim wins over the top-level one.
  nlohmann::json both = full;
  both["vision_config"]["projection_dim"] = direct.projection_dim + 3;
  CHECK(CLIPVisionConfig::from_json(both).projection_dim == direct.projection_dim + 3);

  const CLIPVisionConfig defaults = CLIPVisionConfig::from_json(nlohmann::json::object());
  CHECK(defaults.hidden_size == 768);
  CHECK(defaults.patch_size == 32);
  CHECK(defaults.projection_dim == 512);
  CHECK(defaults.hidden_act == "quick_gelu");
  CHECK(defaults.num_positions() == 50);

  auto with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json bad = vision;
    bad[key] = value;
    return test::error_code([&] { CLIPVisionConfig::from_json(bad); });
  };
  CHECK(with("num_attention_heads", direct.hidden_size + 1) == "bad_config");
  CHECK(with("hidden_act", "swish_glu") == "bad_config");
  CHECK(with("patch_size", direct.image_size + 1) == "bad_config");
  CHECK(with("patch_size", 0) == "bad_config");
  CHECK(with("image_size", "large") == "bad_config");
  CHECK(error_message([&] {
          CLIPVisionConfig::from_json({{"vision_config", {{"hidden_act", "nope"}}}});
        }).find("nope") != std::string::npos);
}

TEST_CASE("CLIP vision model: gelu is the erf form, and bad pixel_values are refused", "[clip_vision]") {
  CLIPVisionConfig config;
  config.hidden_size = 8;
  config.intermediate_size = 16;
  config.num_attention_heads = 2;
  config.num_hidden_layers = 1;
  config.image_size = 12;
  config.patch_size = 4;
  config.projection_dim = 5;
  CLIPVisionModelWithProjection model(config);
  auto out = model(torch::randn({2, 3, 12, 12}));
  CHECK(out.last_hidden_state.sizes() == at::IntArrayRef({2, 10, 8}));
  CHECK(out.image_embeds.sizes() == at::IntArrayRef({2, 5}));
  // Rows and columns short of a whole patch are ignored by the strided conv, as in the reference.
  CHECK(model(torch::randn({1, 3, 14, 15})).last_hidden_state.sizes() == at::IntArrayRef({1, 10, 8}));
  CHECK(test::error_code([&] { model(torch::randn({1, 3, 16, 12})); }) == "bad_shape");
  CHECK(test::error_code([&] { model(torch::randn({1, 1, 12, 12})); }) == "bad_shape");
  CHECK(test::error_code([&] { model(torch::randn({3, 12, 12})); }) == "bad_shape");
  auto x = torch::linspace(-3, 3, 13);
  A2A_CHECK_CLOSE(clip_activation(x, "gelu"), 0.5 * x * (1 + torch::erf(x / std::sqrt(2.0))), 1e-6);
  A2A_CHECK_CLOSE(clip_activation(x, "quick_gelu"), x * torch::sigmoid(1.702 * x), 1e-6);
}

TEST_CASE("CLIP vision encoder builds with CLIP ViT-L/14's layout", "[clip_vision]") {
  // The Stable Diffusion safety checker's CLIPConfig holds openai/clip-vit-large-patch14's vision tower.
  const std::string config_file = "hf_layouts/stable-diffusion-v1-5/safety_checker/config.json";
  const std::string keys_file = "keys/clip_vit_l14_vision_with_projection.txt";
  A2A_REQUIRE_FIXTURE(config_file);
  A2A_REQUIRE_FIXTURE(keys_file);
  const auto started = std::chrono::steady_clock::now();
  const auto config = CLIPVisionConfig::from_config(ConfigReader::from_file(test::fixture_path(config_file)));
  CLIPVisionModelWithProjection model(config);
  test::ShapeMap ours;
  for (const auto& p : model->named_parameters()) ours[p.key()] = p.value().sizes().vec();
  const auto ref = read_key_list(test::fixture_path(keys_file), "param");
  CHECK(test::first_difference(ours, ref) == "");
  CHECK(ours.size() == ref.size());
  // The key list names no buffers, and the model registers none: position ids are computed.
  CHECK(model->named_buffers().size() == read_key_list(test::fixture_path(keys_file), "buffer").size());
  CHECK(read_key_list(test::fixture_path(keys_file)).size() == ref.size());
  std::cout << "ViT-L/14 vision model built in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s" << std::endl;
  // A checkpoint of an older transformers that stored position_ids must still load.
  CHECK(std::any_of(known_harmless_unexpected_keys().begin(), known_harmless_unexpected_keys().end(),
                    [](const std::string& p) { return key_matches(p, "vision_model.embeddings.position_ids"); }));
}

// ---- loading from folders ----

namespace {

// A model folder in the scratch directory: config.json (given) and model.safetensors (given tensors).
std::string write_model_folder(const std::string& name, const nlohmann::json& config, const TensorMap& weights) {
  const std::string folder = test::fresh_dir(name);
  test::write_text(folder + "/config.json", config.dump(2));
  save_safetensors(folder + "/model.safetensors", weights, {{"format", "pt"}});
  return folder;
}

}  // namespace

TEST_CASE("CLIP vision weights load strictly: missing, unexpected and mis-shaped tensors are named", "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/model.safetensors");
  const auto f = load_vision_fixture(test::fixture_path(kVisionFixture));
  auto attempt = [&](const std::string& name, const TensorMap& weights) {
    const std::string folder = write_model_folder(name, f.config_json, weights);
    CLIPVisionModelWithProjection model(f.config);
    try {
      load_weights(*model, folder);
    } catch (const Error& e) {
      CHECK(e.code() == "weights_mismatch");
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(attempt("clip_vision_ok", f.weights).empty());
  TensorMap missing = f.weights;
  missing.erase("vision_model.pre_layrnorm.bias");
  CHECK(attempt("clip_vision_missing", missing).find("vision_model.pre_layrnorm.bias") != std::string::npos);
  TensorMap extra = f.weights;
  extra["vision_model.encoder.layers.99.mlp.fc1.weight"] = torch::zeros({2, 2});
  CHECK(attempt("clip_vision_extra", extra).find("layers.99.mlp.fc1.weight") != std::string::npos);
  TensorMap misshaped = f.weights;
  misshaped["vision_model.embeddings.class_embedding"] = torch::zeros({f.config.hidden_size + 1});
  CHECK(attempt("clip_vision_misshaped", misshaped).find("vision_model.embeddings.class_embedding") !=
        std::string::npos);
}

TEST_CASE("preprocessor_config.json reads both layouts and refuses what cannot be done exactly", "[clip_vision]") {
  const ImagePreprocessOptions defaults;
  auto read = [&](const nlohmann::json& json) {
    return image_processor_options(ConfigReader(json, "preprocessor_config.json"), defaults);
  };
  // CLIPFeatureExtractor (Stable Diffusion's feature_extractor/): plain ints.
  auto old = read({{"size", 256},
                   {"crop_size", 240},
                   {"resample", 2},
                   {"image_mean", {0.5, 0.5, 0.5}},
                   {"image_std", {0.25, 0.5, 1.0}}});
  CHECK(old.resize == 256);
  CHECK(old.crop == 240);
  CHECK(old.filter == ResizeFilter::Bilinear);
  CHECK(old.mean == std::vector<double>{0.5, 0.5, 0.5});
  CHECK(old.std == std::vector<double>{0.25, 0.5, 1.0});
  // CLIPImageProcessor: shortest_edge and a height/width crop.
  auto current = read({{"size", {{"shortest_edge", 336}}},
                       {"crop_size", {{"height", 336}, {"width", 336}}},
                       {"resample", 3},
                       {"do_rescale", true},
                       {"rescale_factor", 0.00392156862745098}});
  CHECK(current.resize == 336);
  CHECK(current.crop == 336);
  CHECK(current.filter == ResizeFilter::Bicubic);
  CHECK(current.mean == defaults.mean);
  auto plain = read({{"do_normalize", false}, {"do_center_crop", false}, {"do_resize", false}});
  CHECK(plain.resize == 0);
  CHECK(plain.crop == 0);
  CHECK(plain.mean == std::vector<double>{0, 0, 0});
  CHECK(plain.std == std::vector<double>{1, 1, 1});

  CHECK(test::error_code([&] { read({{"resample", 0}}); }) == "bad_config");
  CHECK(test::error_code([&] { read({{"crop_size", {{"height", 224}, {"width", 200}}}}); }) == "bad_config");
  CHECK(test::error_code([&] { read({{"size", {{"height", 224}, {"width", 224}}}}); }) == "bad_config");
  CHECK(test::error_code([&] { read({{"rescale_factor", 1.0}}); }) == "bad_config");
  CHECK(test::error_code([&] { read({{"image_std", {0.5, 0.0, 0.5}}}); }) == "bad_config");
  CHECK(test::error_code([&] { read({{"image_mean", {0.5}}}); }) == "bad_config");
  CHECK(test::error_code([&] { read({{"size", "big"}}); }) == "bad_config");
  CHECK(error_message([&] { read({{"resample", 0}}); }).find("resample") != std::string::npos);
}

// ---- clip_vision_encoder stage ----

namespace {

std::unique_ptr<Stage> make_vision_stage(const Json& given, ModuleCache* cache) {
  return test::configure_stage("clip_vision_encoder", given, cache).stage;
}

at::Tensor test_image(int64_t batch, int64_t height, int64_t width) {
  torch::manual_seed(11);
  return torch::rand({batch, 3, height, width});
}

at::Tensor encode(Stage& stage, const at::Tensor& image) {
  auto run = test::run_stage(stage, {{"image", Value::image(image)}});
  const Value& out = run.outputs.at("embedding");
  REQUIRE(out.type() == ValueType::Embedding);
  CHECK(run.progress == std::vector<int64_t>{1});
  return out.tensor();
}

}  // namespace

TEST_CASE("clip_vision_encoder's tiny preset gives image_embeds and patch tokens", "[clip_vision]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  const Json tiny = {{"tiny_hidden_size", 16}, {"tiny_image_size", 28}, {"tiny_patch_size", 7}};
  auto stage = make_vision_stage(tiny, &cache);
  auto& model = dynamic_cast<CLIPVisionModelWithProjectionImpl&>(*stage->module());
  const auto& config = model.vision_model->config;
  CHECK(config.image_size == 28);
  CHECK(config.patch_size == 7);
  const auto image = test_image(2, 40, 33);
  ImagePreprocessOptions preprocess;
  preprocess.resize = preprocess.crop = config.image_size;
  const auto pixels = preprocess_image(image, preprocess);

  const auto embeds = encode(*stage, image);
  CHECK(embeds.sizes() == at::IntArrayRef({2, 1, config.projection_dim}));
  A2A_CHECK_CLOSE(embeds.squeeze(1), model.forward(pixels).image_embeds, 1e-6);

  Json patches = tiny;
  patches["output"] = "patch_tokens";
  auto patch_stage = make_vision_stage(patches, &cache);
  CHECK(patch_stage->module() == stage->module());
  const auto tokens = encode(*patch_stage, image);
  CHECK(tokens.sizes() == at::IntArrayRef({2, config.num_patches(), config.hidden_size}));
  A2A_CHECK_CLOSE(tokens, model.forward(pixels).last_hidden_state.slice(1, 1), 1e-6);

  patches["hidden_layer"] = -2;  // LLaVA's penultimate layer
  const auto penultimate = encode(*make_vision_stage(patches, &cache), image);
  CHECK(penultimate.sizes() == tokens.sizes());
  A2A_CHECK_CLOSE(penultimate, model.forward(pixels, true).hidden_states[config.num_hidden_layers - 1].slice(1, 1),
                  1e-6);
  CHECK_FALSE(torch::allclose(penultimate, tokens));
  patches["hidden_layer"] = 0;
  A2A_CHECK_CLOSE(encode(*make_vision_stage(patches, &cache), image),
                  model.vision_model->hidden_state(pixels, 0).slice(1, 1), 1e-6);

  // Another seed, other weights.
  Json reseeded = tiny;
  reseeded["tiny_seed"] = 5;
  CHECK_FALSE(torch::allclose(encode(*make_vision_stage(reseeded, &cache), image), embeds));
}

TEST_CASE("clip_vision_encoder refuses bad parameters and empty images with codes", "[clip_vision]") {
  ModuleCache cache;
  CHECK(test::error_code([&] { make_vision_stage({{"output", "cls_token"}}, &cache); }) == "param_not_allowed");
  CHECK(test::error_code([&] {
          make_vision_stage({{"output", "patch_tokens"}, {"hidden_layer", 3}}, &cache);
        }) == "bad_hidden_layer");
  CHECK(test::error_code([&] {
          make_vision_stage({{"output", "patch_tokens"}, {"hidden_layer", -4}}, &cache);
        }) == "bad_hidden_layer");
  CHECK(test::error_code([&] {
          make_vision_stage({{"output", "patch_tokens"}, {"hidden_layer", -3}}, &cache);
        }).empty());
  CHECK(test::error_code([&] { make_vision_stage({{"hidden_layer", -2}}, &cache); }) == "conflicting_params");
  CHECK(test::error_code([&] { make_vision_stage({{"hidden_layer", "last"}}, &cache); }) == "param_type");
  CHECK(test::error_code([&] { make_vision_stage({{"tiny_patch_size", 300}}, &cache); }) == "bad_config");
  CHECK(test::error_code([&] {
          make_vision_stage({{"model", test::scratch_dir() + "/no_such_model"}}, &cache);
        }) != "");

  torch::NoGradGuard no_grad;
  auto stage = make_vision_stage({{"tiny_image_size", 28}, {"tiny_patch_size", 7}}, &cache);
  // Any image size: the preprocessing resizes the shorter side and crops to the model's resolution.
  CHECK(encode(*stage, torch::rand({1, 3, 5, 9})).sizes() == at::IntArrayRef({1, 1, 32}));
  CHECK(test::error_code([&] {
          test::run_stage(*stage, {{"image", Value::image(torch::rand({1, 3, 0, 9}))}});
        }) == "bad_shape");
}

namespace {

// The fixture's config.json and weights in a folder of their own (the weights linked), for the stage.
std::string fixture_model_folder(const VisionFixture& f, const std::string& name) {
  const std::string folder = test::fresh_dir(name);
  fs::copy_file(f.dir + "/config.json", folder + "/config.json");
  fs::create_symlink(f.dir + "/model.safetensors", folder + "/model.safetensors");
  return folder;
}

}  // namespace

TEST_CASE("clip_vision_encoder loads a transformers folder and its preprocessor_config.json", "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/model.safetensors");
  torch::NoGradGuard no_grad;
  const auto f = load_vision_fixture(test::fixture_path(kVisionFixture));
  auto model = load_fixture_model(f);
  const int64_t size = f.config.image_size;
  const auto image = test_image(2, size + 9, size + 3);
  ModuleCache cache;

  // No preprocessor_config.json: CLIP's preprocessing at the model's image_size.
  const std::string folder = fixture_model_folder(f, "clip_vision_folder");
  ImagePreprocessOptions clip;
  clip.resize = clip.crop = size;
  auto stage = make_vision_stage({{"model", folder}}, &cache);
  CHECK(dynamic_cast<CLIPVisionModelWithProjectionImpl*>(stage->module()) != nullptr);
  A2A_CHECK_CLOSE(encode(*stage, image).squeeze(1), model->forward(preprocess_image(image, clip)).image_embeds, 1e-5);

  // With one: its size, filter and statistics.
  const std::string custom = fixture_model_folder(f, "clip_vision_folder_custom");
  test::write_text(custom + "/preprocessor_config.json",
                   nlohmann::json({{"size", {{"shortest_edge", size + 5}}},
                                   {"crop_size", {{"height", size}, {"width", size}}},
                                   {"resample", 2},
                                   {"image_mean", {0.5, 0.4, 0.3}},
                                   {"image_std", {0.2, 0.3, 0.4}}})
                       .dump());
  ImagePreprocessOptions expected;
  expected.resize = size + 5;
  expected.crop = size;
  expected.filter = ResizeFilter::Bilinear;
  expected.mean = {0.5, 0.4, 0.3};
  expected.std = {0.2, 0.3, 0.4};
  const at::Tensor pixels = preprocess_image(image, expected);
  auto patch_stage = make_vision_stage({{"model", custom}, {"output", "patch_tokens"}, {"hidden_layer", 1}}, &cache);
  A2A_CHECK_CLOSE(encode(*patch_stage, image), model->vision_model->hidden_state(pixels, 1).slice(1, 1), 1e-5);
  CHECK(test::error_code([&] {
          make_vision_stage(
              {{"model", custom}, {"output", "patch_tokens"}, {"hidden_layer", f.config.num_hidden_layers + 1}},
              &cache);
        }) == "bad_hidden_layer");

  // A crop the model cannot take, and a filter the preprocessing does not have.
  const std::string wrong_crop = fixture_model_folder(f, "clip_vision_folder_wrong_crop");
  test::write_text(wrong_crop + "/preprocessor_config.json", nlohmann::json({{"crop_size", size + 1}}).dump());
  CHECK(test::error_code([&] { make_vision_stage({{"model", wrong_crop}}, &cache); }) == "bad_config");
  const std::string lanczos = fixture_model_folder(f, "clip_vision_folder_lanczos");
  test::write_text(lanczos + "/preprocessor_config.json", nlohmann::json({{"resample", 1}}).dump());
  CHECK(test::error_code([&] { make_vision_stage({{"model", lanczos}}, &cache); }) == "bad_config");
}

TEST_CASE("clip_vision_encoder loads the vision half of a full CLIPModel checkpoint", "[clip_vision]") {
  A2A_REQUIRE_FIXTURE(std::string(kVisionFixture) + "/model.safetensors");
  torch::NoGradGuard no_grad;
  const auto f = load_vision_fixture(test::fixture_path(kVisionFixture));
  nlohmann::json vision = f.config_json;
  vision.erase("projection_dim");  // as older CLIPConfig files: only the top level has it
  const nlohmann::json config = {{"model_type", "clip"},
                                 {"projection_dim", f.config.projection_dim},
                                 {"text_config", {{"hidden_size", 8}, {"num_attention_heads", 2}}},
                                 {"vision_config", vision}};
  TensorMap weights = f.weights;
  weights["text_model.final_layer_norm.weight"] = torch::ones({8});
  weights["text_projection.weight"] = torch::zeros({f.config.projection_dim, 8});
  weights["logit_scale"] = torch::tensor(2.6592f);
  const std::string folder = write_model_folder("clip_full_model", config, weights);
  ModuleCache cache;
  auto stage = make_vision_stage({{"model", folder}}, &cache);
  auto model = load_fixture_model(f);
  const auto image = test_image(1, f.config.image_size, f.config.image_size);
  ImagePreprocessOptions clip;
  clip.resize = clip.crop = f.config.image_size;
  A2A_CHECK_CLOSE(encode(*stage, image).squeeze(1), model->forward(preprocess_image(image, clip)).image_embeds, 1e-5);

  // A vision config with a stray tensor is still strict.
  weights.erase("text_model.final_layer_norm.weight");
  weights["vision_model.stray"] = torch::zeros({1});
  const std::string stray = write_model_folder("clip_full_model_stray", config, weights);
  CHECK(error_message([&] {
          make_vision_stage({{"model", stray}}, &cache);
        }).find("vision_model.stray") != std::string::npos);
}
