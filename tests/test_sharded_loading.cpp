// Sharded checkpoints load through the same path as the stages (component resolver + load_weights, or
// the stage itself) and give exactly what the single-file checkpoint gives.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "base/error.h"
#include "diffusion/autoencoder_kl.h"
#include "diffusion/unet2d_condition.h"
#include "encoders/clip_text_model.h"
#include "llm/llama.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "test_support.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

// Copies the fixture's config.json into `target` and splits its weights file into shards of at
// most half the data (so at least two), with the index named as the reference libraries name it.
void write_sharded_copy(const std::string& fixture, const std::string& weights_name, const fs::path& target) {
  const fs::path source(a2a::test::fixture_path(fixture));
  fs::create_directories(target);
  fs::copy_file(source / "config.json", target / "config.json", fs::copy_options::overwrite_existing);
  const auto single = a2a::SafeTensorsCheckpoint::open((source / (weights_name + ".safetensors")).string());
  const std::string index = a2a::save_safetensors_sharded(target.string(), weights_name, single->tensors(),
                                                          single->data_bytes() / 2, {{"format", "pt"}});
  REQUIRE(fs::path(index).filename() == weights_name + ".safetensors.index.json");
  const auto sharded = a2a::SafeTensorsCheckpoint::open(index);
  REQUIRE(sharded->sharded());
  REQUIRE(sharded->files().size() >= 2);
  REQUIRE(sharded->records().size() == single->records().size());
}

// A diffusers pipeline folder: model_index.json and one sharded subfolder per component.
fs::path sharded_pipeline() {
  const fs::path root = fs::path(a2a::test::scratch_dir()) / "sharded_pipeline";
  if (fs::exists(root / "model_index.json")) return root;
  write_sharded_copy("unet2d_condition", "diffusion_pytorch_model", root / "unet");
  write_sharded_copy("autoencoder_kl", "diffusion_pytorch_model", root / "vae");
  write_sharded_copy("clip_text_model", "model", root / "text_encoder");
  std::ofstream(root / "model_index.json")
      << R"({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],)"
         R"( "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"]})";
  return root;
}

a2a::ResolvedComponent resolve(const fs::path& path, const std::string& component) {
  a2a::ComponentRequest request;
  request.component = component;
  return a2a::resolve_component(path.string(), request);
}

template <typename Module>
void load_into(Module& module, const std::string& weights) {
  auto report = a2a::load_weights(*module, weights);
  REQUIRE(report.ok());
  module->eval();
}

a2a::Json sharded_stage_params(const a2a::StageInfo& info, a2a::Json given) {
  for (const auto& p : info.params)
    if (!given.contains(p.name) && !p.default_value.is_null()) given[p.name] = p.default_value;
  return given;
}

a2a::PortValues run_loaded_stage(const std::string& type, const a2a::Json& params, const a2a::PortValues& inputs) {
  const auto* info = a2a::StageRegistry::global().find(type);
  REQUIRE(info != nullptr);
  auto stage = info->create();
  a2a::ConfigureContext configure;
  configure.stage_id = type;
  stage->configure(sharded_stage_params(*info, params), configure);
  a2a::RunContext ctx;
  ctx.stage_id = type;
  return stage->run(inputs, ctx);
}

}  // namespace

TEST_CASE("sharded UNet folder in a pipeline equals the single file", "[sharded_loading]") {
  A2A_REQUIRE_FIXTURE("unet2d_condition/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  const auto files = resolve(sharded_pipeline(), "unet");
  CHECK(fs::path(files.folder).filename() == "unet");
  CHECK(fs::path(files.weights).filename() == "diffusion_pytorch_model.safetensors.index.json");
  CHECK(files.config.source() == files.config_path);
  a2a::UNet2DConditionModel sharded(a2a::UNet2DConditionOptions::from_config(files.config));
  load_into(sharded, files.weights);
  const auto single_files = resolve(a2a::test::fixture_path("unet2d_condition"), "unet");
  a2a::UNet2DConditionModel single(a2a::UNet2DConditionOptions::from_config(single_files.config));
  load_into(single, single_files.weights);

  const std::string dir = a2a::test::fixture_path("unet2d_condition");
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  for (const auto& call : meta.at("calls")) {
    const auto& args = call.at("args");
    auto arg = [&](const char* name) { return inputs.at(args.at(name).get<std::string>()); };
    const at::Tensor ours = sharded->forward(arg("sample"), arg("timestep"), arg("encoder_hidden_states"), {});
    CHECK(torch::equal(ours, single->forward(arg("sample"), arg("timestep"), arg("encoder_hidden_states"), {})));
    for (const auto& [name, field] : call.at("outputs").items()) A2A_CHECK_CLOSE(ours, outputs.at(name), 1e-4);
  }
}

TEST_CASE("sharded VAE folder equals the single file, directly and through vae_decode", "[sharded_loading]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  const fs::path pipeline = sharded_pipeline();
  const auto files = resolve(pipeline, "vae");
  a2a::AutoencoderKL sharded(a2a::AutoencoderKLOptions::from_config(files.config));
  load_into(sharded, files.weights);
  a2a::AutoencoderKL single(a2a::AutoencoderKLOptions::from_config(
      a2a::ConfigReader::from_file(a2a::test::fixture_path("autoencoder_kl/config.json"))));
  load_into(single, a2a::test::fixture_path("autoencoder_kl"));

  const std::string dir = a2a::test::fixture_path("autoencoder_kl");
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  for (const auto& call : meta.at("calls")) {
    if (call.at("method") == "encode") {
      const at::Tensor x = inputs.at(call.at("args").at("x").get<std::string>());
      CHECK(torch::equal(sharded->encode(x).mean, single->encode(x).mean));
      A2A_CHECK_CLOSE(sharded->encode(x).mean, outputs.at("latent_mean"), 1e-4);
    } else if (call.at("method") == "decode") {
      const at::Tensor z = inputs.at(call.at("args").at("z").get<std::string>());
      CHECK(torch::equal(sharded->decode(z), single->decode(z)));
      A2A_CHECK_CLOSE(sharded->decode(z), outputs.at("decoded"), 1e-4);
      // The stage, given the pipeline folder, takes the same path.
      const auto latent = a2a::Value::latent(z);
      auto from_pipeline = run_loaded_stage("vae_decode", {{"model", pipeline.string()}}, {{"latent", latent}});
      auto from_single = run_loaded_stage("vae_decode", {{"model", dir}}, {{"latent", latent}});
      CHECK(torch::equal(from_pipeline.at("image").tensor(), from_single.at("image").tensor()));
    }
  }
}

TEST_CASE("sharded CLIP text encoder equals the single file, directly and through the stage", "[sharded_loading]") {
  A2A_REQUIRE_FIXTURE("clip_text_model/model.safetensors");
  torch::NoGradGuard no_grad;
  const fs::path pipeline = sharded_pipeline();
  const auto files = resolve(pipeline, "text_encoder");
  CHECK(fs::path(files.weights).filename() == "model.safetensors.index.json");
  a2a::CLIPTextModel sharded(a2a::CLIPTextConfig::from_config(files.config));
  load_into(sharded, files.weights);
  const std::string dir = a2a::test::fixture_path("clip_text_model");
  a2a::CLIPTextModel single(a2a::CLIPTextConfig::from_config(a2a::ConfigReader::from_file(dir)));
  load_into(single, dir);

  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  const at::Tensor ids = inputs.at(meta.at("calls")[0].at("args").at("input_ids").get<std::string>());
  const auto ours = sharded->forward(ids);
  CHECK(torch::equal(ours.last_hidden_state, single->forward(ids).last_hidden_state));
  CHECK(torch::equal(ours.pooler_output, single->forward(ids).pooler_output));
  A2A_CHECK_CLOSE(ours.last_hidden_state, outputs.at("last_hidden_state"), 1e-4);

  // The stage finds the sharded text_encoder/ of the pipeline folder. (Only configure: the fixture's
  // vocabulary is smaller than the real tokenizer's.)
  if (!a2a::test::fixture_exists("tokenizers/clip/vocab.json")) return;
  const auto* info = a2a::StageRegistry::global().find("clip_text_encoder");
  REQUIRE(info != nullptr);
  auto stage = info->create();
  a2a::ConfigureContext configure;
  configure.stage_id = "clip_text_encoder";
  const a2a::Json params = {{"model", pipeline.string()},
                            {"tokenizer", a2a::test::fixture_path("tokenizers/clip")},
                            {"max_length", sharded->text_model->config.max_position_embeddings}};
  stage->configure(sharded_stage_params(*info, params), configure);
  REQUIRE(stage->module() != nullptr);
  CHECK(stage->module()->parameters().size() == sharded->parameters().size());
}

TEST_CASE("sharded Llama folder loads through load_llama and equals the single file", "[sharded_loading]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  torch::NoGradGuard no_grad;
  const fs::path folder = fs::path(a2a::test::scratch_dir()) / "sharded_llama";
  write_sharded_copy("llama_causal_lm", "model", folder);
  const std::string dir = a2a::test::fixture_path("llama_causal_lm");
  auto sharded = a2a::load_llama(folder.string());
  auto single = a2a::load_llama(dir);
  CHECK(sharded.format == "transformers");

  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  for (const auto& call : meta.at("calls")) {
    if (call.at("method") != "forward") continue;
    const at::Tensor ids = inputs.at(call.at("args").at("input_ids").get<std::string>());
    const at::Tensor logits = sharded.model->forward(ids);
    CHECK(torch::equal(logits, single.model->forward(ids)));
    A2A_CHECK_CLOSE(logits, outputs.at("logits"), 1e-4);
  }
  // The tensors a LoRA merge starts from come through the same shard-aware reader.
  CHECK(a2a::read_transformers_weights(folder.string()).size() == a2a::read_transformers_weights(dir).size());
}

TEST_CASE("component resolver: absent paths, configs and weights are input errors naming the path",
          "[sharded_loading]") {
  const fs::path root = fs::path(a2a::test::scratch_dir()) / "resolver_errors";
  fs::create_directories(root / "unet");
  auto expect = [](const std::function<void()>& f, const std::string& code, const std::string& needle) {
    try {
      f();
      FAIL("no error");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == code);
      CHECK(e.message().find(needle) != std::string::npos);
    }
  };
  expect([&] { resolve(root / "absent", "unet"); }, "missing_model", (root / "absent").string());
  expect([&] { resolve(root, "unet"); }, "missing_config", (root / "unet").string());
  std::ofstream(root / "unet" / "config.json") << "{}";
  expect([&] { resolve(root, "unet"); }, "missing_weights", (root / "unet").string());
  // The llm stage never swaps a missing model for random weights.
  expect(
      [&] {
        run_loaded_stage("llm", {{"model", (root / "absent.bin").string()}}, {{"prompt", a2a::Value::text("hi")}});
      },
      "missing_model", (root / "absent.bin").string());
}
