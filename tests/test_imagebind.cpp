// ImageBind: parity with facebookresearch/ImageBind's ImageBindModel (vision, audio, text), checkpoint
// naming and strict loading, the other modalities, video clip averaging, the tokenize helper.
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "base/error.h"
#include "encoders/imagebind_model.h"
#include "nn/seeded_init.h"
#include "test_support.h"
#include "tokenizers/clip_tokenizer.h"
#include "weights/config_reader.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

struct ImageBindFixture {
  std::string dir;
  nlohmann::json meta;
  ImageBindOptions options;
  TensorMap inputs, outputs;
};

// The constructor arguments of meta.json plus the vocabulary the fixture swaps in after construction.
ImageBindOptions imagebind_fixture_options(const nlohmann::json& meta, const std::string& source) {
  nlohmann::json config = meta.at("constructor_kwargs");
  config["text_vocab_size"] = meta.at("text_vocab_size");
  return ImageBindOptions::from_config(ConfigReader(config, source));
}

ImageBindFixture load_imagebind_fixture(const std::string& name) {
  ImageBindFixture f;
  f.dir = test::fixture_path(name);
  f.meta = test::read_json(f.dir + "/meta.json");
  f.options = imagebind_fixture_options(f.meta, f.dir + "/meta.json");
  f.inputs = load_safetensors(f.dir + "/inputs.safetensors");
  f.outputs = load_safetensors(f.dir + "/outputs.safetensors");
  return f;
}

ImageBindModel load_imagebind_fixture_model(const ImageBindFixture& f) {
  ImageBindModel model(f.options);
  load_imagebind_weights(*model, f.dir + "/model.safetensors");
  model->eval();
  return model;
}

// |ours - ref| <= atol + rtol * |ref| elementwise, with the fixture's suggested tolerances.
void check_imagebind_output(const ImageBindFixture& f, const std::string& name, const at::Tensor& ours) {
  const auto& tol = f.meta.at("tolerance").at(name);
  const double atol = tol.at("suggested_atol").get<double>(), rtol = tol.at("suggested_rtol").get<double>();
  const at::Tensor ref = f.outputs.at(name);
  REQUIRE(ours.sizes() == ref.sizes());
  auto diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs();
  const double max_diff = diff.max().item<double>();
  const double excess = (diff - (atol + rtol * ref.to(at::kDouble).abs())).max().item<double>();
  std::cout << f.meta["fixture"].get<std::string>() << " " << name << ": max abs diff " << max_diff << " (atol " << atol
            << ", rtol " << rtol << ")" << std::endl;
  INFO(name << ": max abs diff " << max_diff);
  CHECK(excess <= 0.0);
}

std::string imagebind_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const a2a::Error& e) {
    return e.code() + ": " + e.message();
  }
  return "no error";
}

// A small model with seeded weights for the property tests (no fixture needed).
ImageBindModel seeded_imagebind(std::vector<std::string> modalities = imagebind_modalities()) {
  ImageBindOptions o;
  o.out_embed_dim = 8;
  o.vision_embed_dim = o.audio_embed_dim = o.text_embed_dim = 16;
  o.depth_embed_dim = o.thermal_embed_dim = o.imu_embed_dim = 8;
  o.vision_num_heads = o.audio_num_heads = o.text_num_heads = 2;
  o.depth_num_heads = o.thermal_num_heads = o.imu_num_heads = 2;
  o.vision_num_blocks = o.audio_num_blocks = o.text_num_blocks = 1;
  o.depth_num_blocks = o.thermal_num_blocks = o.imu_num_blocks = 1;
  o.text_vocab_size = 64;
  o.modalities = std::move(modalities);
  ImageBindModel model(o);
  initialize_seeded_weights(*model, 11);
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("ImageBind vision embeddings and trunk match the reference", "[imagebind]") {
  A2A_REQUIRE_FIXTURE("imagebind_vision/meta.json");
  torch::NoGradGuard no_grad;
  auto f = load_imagebind_fixture("imagebind_vision");
  auto model = load_imagebind_fixture_model(f);
  for (const auto& call : f.meta.at("calls")) {
    for (const auto& output : call.at("outputs").items()) {
      const std::string& name = output.key();
      if (name == "vision_embeds") {
        const auto& inputs = call.at("args").at("inputs");
        auto ours = model->forward({{"vision", f.inputs.at(inputs.at("vision").get<std::string>())}});
        check_imagebind_output(f, name, ours.at("vision"));
      } else if (name == "vision_trunk") {
        check_imagebind_output(f, name, model->trunk_output("vision", f.inputs.at(call.at("args").at("vision"))));
      } else {
        FAIL("unknown output " << name);
      }
    }
  }
}

TEST_CASE("ImageBind audio and text embeddings match the reference", "[imagebind]") {
  A2A_REQUIRE_FIXTURE("imagebind_audio_text/meta.json");
  torch::NoGradGuard no_grad;
  auto f = load_imagebind_fixture("imagebind_audio_text");
  auto model = load_imagebind_fixture_model(f);
  const auto& call = f.meta.at("calls").at(0);
  REQUIRE(call.at("method") == "forward");
  std::map<std::string, at::Tensor> inputs;
  for (const auto& item : call.at("args").at("inputs").items()) {
    inputs[item.key()] = f.inputs.at(item.value().get<std::string>());
  }
  auto ours = model->forward(inputs);
  for (const auto& output : call.at("outputs").items()) {
    const std::string& name = output.key();  // "<modality>_embeds"
    const std::string modality = name.substr(0, name.find('_'));
    REQUIRE(ours.count(modality) == 1);
    check_imagebind_output(f, name, ours.at(modality));
  }
  // Audio is the normalised embedding x 20 averaged over clips; NExT-GPT's variant skips the x 20.
  ImageBindOptions plain = f.options;
  plain.audio_logit_scale = false;
  ImageBindModel nextgpt(plain);
  load_imagebind_weights(*nextgpt, f.dir + "/model.safetensors");
  auto unscaled = nextgpt->embed("audio", inputs.at("audio"));
  CHECK(test::scaled_error(unscaled * 20.0, f.outputs.at("audio_embeds")) <= 1e-5);
}

TEST_CASE("ImageBind options read the constructor arguments and the checkpoint's shapes", "[imagebind]") {
  A2A_REQUIRE_FIXTURE("imagebind_vision/meta.json");
  auto f = load_imagebind_fixture("imagebind_vision");
  const auto& kwargs = f.meta.at("constructor_kwargs");
  CHECK(f.options.vision_embed_dim == kwargs.at("vision_embed_dim").get<int64_t>());
  CHECK(f.options.kernel_size == kwargs.at("kernel_size").get<std::vector<int64_t>>());
  CHECK(f.options.text_vocab_size == f.meta.at("text_vocab_size").get<int64_t>());

  // Heads are not in the tensors: the base supplies them, everything else comes from the shapes.
  ImageBindOptions base;
  base.vision_num_heads = f.options.vision_num_heads;
  base.audio_num_heads = f.options.audio_num_heads;
  base.text_num_heads = f.options.text_num_heads;
  base.depth_num_heads = f.options.depth_num_heads;
  base.thermal_num_heads = f.options.thermal_num_heads;
  base.imu_num_heads = f.options.imu_num_heads;
  auto inferred = ImageBindOptions::from_weights_file(f.dir + "/model.safetensors", base);
  CHECK(inferred.modalities == imagebind_modalities());
  for (const char* key : {"out_embed_dim", "vision_embed_dim", "vision_num_blocks", "audio_embed_dim",
                          "audio_num_blocks", "text_embed_dim", "text_num_blocks", "depth_embed_dim",
                          "depth_num_blocks", "depth_kernel_size", "thermal_embed_dim", "thermal_kernel_size",
                          "imu_embed_dim", "imu_num_blocks", "audio_kernel_size", "video_frames"}) {
    INFO(key);
    nlohmann::json json = {
        {"out_embed_dim", inferred.out_embed_dim},         {"vision_embed_dim", inferred.vision_embed_dim},
        {"vision_num_blocks", inferred.vision_num_blocks}, {"audio_embed_dim", inferred.audio_embed_dim},
        {"audio_num_blocks", inferred.audio_num_blocks},   {"text_embed_dim", inferred.text_embed_dim},
        {"text_num_blocks", inferred.text_num_blocks},     {"depth_embed_dim", inferred.depth_embed_dim},
        {"depth_num_blocks", inferred.depth_num_blocks},   {"depth_kernel_size", inferred.depth_kernel_size},
        {"thermal_embed_dim", inferred.thermal_embed_dim}, {"thermal_kernel_size", inferred.thermal_kernel_size},
        {"imu_embed_dim", inferred.imu_embed_dim},         {"imu_num_blocks", inferred.imu_num_blocks},
        {"audio_kernel_size", inferred.audio_kernel_size}, {"video_frames", inferred.video_frames}};
    CHECK(json.at(key) == kwargs.at(key));
  }
  CHECK(inferred.kernel_size == f.options.kernel_size);
  CHECK(inferred.text_vocab_size == f.options.text_vocab_size);
  ImageBindModel model(inferred);
  CHECK(load_imagebind_weights(*model, f.dir + "/model.safetensors").ok());
}

TEST_CASE("ImageBind module tree is named like the checkpoint, and loading is strict", "[imagebind]") {
  A2A_REQUIRE_FIXTURE("imagebind_audio_text/meta.json");
  auto f = load_imagebind_fixture("imagebind_audio_text");
  const TensorMap weights = load_safetensors(f.dir + "/model.safetensors");
  ImageBindModel full(f.options);
  const TensorMap state = module_state(*full);
  std::set<std::string> ours, reference;
  for (const auto& kv : state) ours.insert(kv.first);
  for (const auto& key : f.meta.at("state_dict_key_list")) reference.insert(key.get<std::string>());
  CHECK(ours == reference);
  for (const auto& [name, tensor] : weights) {
    INFO(name);
    CHECK(state.at(name).sizes() == tensor.sizes());
  }

  // Only vision, audio and text: the other modalities' keys are skipped by name and reported.
  ImageBindOptions three = f.options;
  three.modalities = {"vision", "audio", "text"};
  ImageBindModel partial(three);
  auto report = load_imagebind_weights(*partial, f.dir + "/model.safetensors");
  CHECK(report.ok());
  CHECK(report.loaded + report.ignored.size() == weights.size());
  for (const auto& key : report.ignored) {
    INFO(key);
    CHECK((key.find(".depth.") != std::string::npos || key.find(".thermal.") != std::string::npos ||
           key.find(".imu.") != std::string::npos));
  }
  // Without those options strict loading names the keys the model lacks.
  CHECK_THAT(imagebind_error_of([&] { load_state_dict(*partial, weights); }),
             Catch::Contains("weights_mismatch") && Catch::Contains("modality_trunks.depth.blocks.0.attn.bias_k"));
  // A missing tensor and a mis-shaped one are named.
  TensorMap missing = weights;
  missing.erase("modality_trunks.audio.blocks.0.attn.bias_v");
  CHECK_THAT(imagebind_error_of([&] { load_state_dict(*full, missing); }),
             Catch::Contains("modality_trunks.audio.blocks.0.attn.bias_v"));
  ImageBindOptions wider = f.options;
  wider.out_embed_dim += 4;
  ImageBindModel wrong(wider);
  CHECK_THAT(imagebind_error_of([&] { load_state_dict(*wrong, weights); }),
             Catch::Contains("modality_heads.vision.2.weight"));
}

TEST_CASE("ImageBind video: a clip of one repeated frame is that image, clips are averaged", "[imagebind]") {
  torch::NoGradGuard no_grad;
  auto model = seeded_imagebind({"vision"});
  const int64_t size = model->options().image_size;
  torch::manual_seed(5);
  auto image = torch::randn({1, 3, size, size});
  auto image_embedding = model->embed("vision", image);
  // [B, S = 1, 3, T = 2, H, W] with both frames equal to the image.
  auto clip = image.unsqueeze(2).expand({1, 3, 2, size, size}).unsqueeze(1);
  CHECK(test::scaled_error(model->embed("vision", clip), image_embedding) <= 1e-6);

  auto clips = torch::randn({2, 3, 3, 2, size, size});
  auto averaged = model->embed("vision", clips);
  REQUIRE(averaged.sizes() == at::IntArrayRef({2, model->options().out_embed_dim}));
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<at::Tensor> each;
    for (int64_t s = 0; s < 3; ++s) each.push_back(model->embed("vision", clips[b][s].unsqueeze(0).unsqueeze(0)));
    CHECK(test::scaled_error(averaged[b], torch::cat(each).mean(0)) <= 1e-6);
  }
  // Averaged unit vectors are not normalised again.
  CHECK(averaged.norm(2, -1).max().item<double>() < 1.0);
}

TEST_CASE("ImageBind depth, thermal and IMU embeddings have their fixed scales", "[imagebind]") {
  torch::NoGradGuard no_grad;
  auto model = seeded_imagebind();
  const auto& o = model->options();
  torch::manual_seed(6);
  auto norm_of = [](const at::Tensor& e) { return e.norm(2, -1); };
  auto depth = model->embed("depth", torch::randn({2, 1, o.depth_image_size, o.depth_image_size}));
  auto thermal = model->embed("thermal", torch::randn({1, 1, o.depth_image_size, o.depth_image_size}));
  auto imu = model->embed("imu", torch::randn({1, o.imu_channels, o.imu_samples}));
  auto audio = model->embed("audio", torch::randn({1, 1, o.audio_num_mel_bins, o.audio_target_len}));
  REQUIRE(depth.sizes() == at::IntArrayRef({2, o.out_embed_dim}));
  CHECK(norm_of(depth).sub(5.0).abs().max().item<double>() < 1e-4);
  CHECK(norm_of(thermal).sub(10.0).abs().max().item<double>() < 1e-4);
  CHECK(norm_of(imu).sub(5.0).abs().max().item<double>() < 1e-4);
  CHECK(norm_of(audio).sub(20.0).abs().max().item<double>() < 1e-4);
  auto ids = torch::zeros({1, o.text_context_length}, torch::kLong);
  ids[0][0] = 62;
  ids[0][1] = 63;
  const double text_scale = std::min(std::exp(model->logit_scales.at("text")->log_logit_scale.item<double>()), 100.0);
  CHECK(std::abs(norm_of(model->embed("text", ids)).item<double>() - text_scale) < 1e-3);
}

TEST_CASE("ImageBind errors: bad options, unknown or absent modalities, wrong shapes", "[imagebind]") {
  auto bad = [](nlohmann::json config) {
    return imagebind_error_of([&] { ImageBindOptions::from_config(ConfigReader(config, "kwargs")); });
  };
  CHECK_THAT(bad({{"vision_embed_dim", 30}, {"vision_num_heads", 4}}),
             Catch::StartsWith("bad_config") && Catch::Contains("vision_embed_dim 30"));
  CHECK_THAT(bad({{"modalities", {"vision", "audoi"}}}), Catch::Contains("did you mean 'audio'"));
  CHECK_THAT(bad({{"kernel_size", {2, 14}}}), Catch::Contains("kernel_size"));
  CHECK_THAT(bad({{"audio_stride", 0}}), Catch::StartsWith("bad_config"));
  CHECK_THAT(bad({{"text_num_blocks", "many"}}), Catch::Contains("text_num_blocks"));

  torch::NoGradGuard no_grad;
  auto model = seeded_imagebind({"vision", "text"});
  const int64_t size = model->options().image_size;
  CHECK_THAT(imagebind_error_of([&] {
               model->embed("vison", torch::zeros({1, 3, size, size}));
             }),
             Catch::StartsWith("unknown_modality") && Catch::Contains("did you mean 'vision'"));
  CHECK_THAT(imagebind_error_of([&] {
               model->embed("audio", torch::zeros({1, 1, 128, 204}));
             }),
             Catch::StartsWith("modality_not_built"));
  CHECK_THAT(imagebind_error_of([&] {
               model->embed("vision", torch::zeros({1, 3, size, size + 14}));
             }),
             Catch::StartsWith("bad_shape"));
  CHECK_THAT(imagebind_error_of([&] {
               model->embed("vision", torch::zeros({3, size, size}));
             }),
             Catch::StartsWith("bad_shape"));
  CHECK_THAT(imagebind_error_of([&] {
               model->embed("text", torch::zeros({1, 10}, torch::kLong));
             }),
             Catch::StartsWith("bad_shape"));
  auto ids = torch::zeros({1, model->options().text_context_length}, torch::kLong);
  ids[0][3] = model->options().text_vocab_size;
  CHECK_THAT(imagebind_error_of([&] { model->embed("text", ids); }), Catch::StartsWith("token_out_of_range"));
  CHECK_THAT(imagebind_error_of([] {
               ImageBindOptions::from_weights({{"unrelated", {3}}});
             }),
             Catch::StartsWith("bad_config"));
}

TEST_CASE("ImageBind tokenize: start, BPE ids, end in the last slot when cut, zero padding", "[imagebind]") {
  A2A_REQUIRE_FIXTURE("tokenizers/clip/cases.json");
  const std::string dir = test::fixture_path("tokenizers/clip");
  auto tokenizer = ClipTokenizer::from_folder(dir);
  auto cases = test::read_json(dir + "/cases.json");
  std::vector<std::string> texts;
  for (const auto& c : cases["cases"]) texts.push_back(c["text"].get<std::string>());
  const int64_t context = 77;
  auto ids = imagebind_tokenize(*tokenizer, texts, context);
  REQUIRE(ids.sizes() == at::IntArrayRef({static_cast<int64_t>(texts.size()), context}));
  bool saw_truncated = false;
  for (size_t i = 0; i < texts.size(); ++i) {
    INFO("text: " << texts[i]);
    // The reference: [sot] + ids, cut to context - 1, + [eot], zero-padded.
    std::vector<int64_t> expected = {49406};
    for (const auto& id : cases["cases"][i]["ids"]) expected.push_back(id.get<int64_t>());
    if (static_cast<int64_t>(expected.size()) > context - 1) {
      expected.resize(context - 1);
      saw_truncated = true;
    }
    expected.push_back(49407);
    expected.resize(context, 0);
    auto row = ids[static_cast<int64_t>(i)];
    CHECK(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + context) == expected);
  }
  CHECK(saw_truncated);
  CHECK_THROWS_AS(imagebind_tokenize(*tokenizer, {"a"}, 1), a2a::Error);
}
