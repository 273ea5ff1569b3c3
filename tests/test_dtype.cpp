// The pipeline's dtype: every model family and model stage run in bfloat16 on the CPU, with their parameters
// really in bfloat16, float32 outputs where the stage documents them, and results close to float32.
//
// Bounds: the scaled error max|bf16 - fp32| / max(1, max|fp32|). bfloat16 keeps 8 mantissa bits (a relative
// step of 2^-8 ≈ 4e-3 per rounding), and errors grow with depth, so each bound is about 3x the error measured
// on LibTorch 1.13 CPU (the figure is beside each bound) and well below what an ignored dtype or a broken
// upcast would give (then the parameter check fails, or the error is O(1) / NaN).
//
// LibTorch's bfloat16 CPU kernels round differently from one CPU to another: the figures beside the bounds
// were measured on one machine, and an AMD EPYC without AVX-512 measured up to 2.9x as much on the same
// tests (latent_diffusion's latent 0.146, audio_diffusion's 0.051, hifigan's waveform 0.020, the UNet's
// sample 0.052). Every bound is therefore scaled by kCpuSpread.
#include <torch/script.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include "diffusion/autoencoder_kl.h"
#include "diffusion/unet2d_condition.h"
#include "encoders/clap_text_model.h"
#include "encoders/clip_text_model.h"
#include "llm/llama.h"
#include "llm/output_projection.h"
#include "nn/attention.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "stage_runner.h"
#include "test_support.h"
#include "vocoders/hifigan.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

// Every floating-point parameter and buffer of the module has `dtype`.
bool floating_tensors_are(const torch::nn::Module& module, at::ScalarType dtype) {
  bool any = false;
  for (const auto& p : module.parameters()) {
    if (!p.is_floating_point()) continue;
    if (p.scalar_type() != dtype) return false;
    any = true;
  }
  for (const auto& b : module.buffers())
    if (b.is_floating_point() && b.scalar_type() != dtype) return false;
  return any;
}

// Loads a fixture's weights into `module`, converted to `dtype` as they are copied in.
template <class Module>
Module& load_fixture_weights(Module& module, const std::string& file, at::ScalarType dtype) {
  LoadOptions options;
  options.source = file;
  options.dtype = dtype;
  load_state_dict(*module, load_safetensors(test::fixture_path(file)), options);
  module->eval();
  return module;
}

at::Tensor half_precision(const at::Tensor& t) { return t.is_floating_point() ? t.to(at::kBFloat16) : t; }

// The same fixture weights in a float32 and a bfloat16 model; checks the second really holds bfloat16.
template <class Model>
struct Fp32AndBf16 {
  Model fp32, bf16;
};

template <class Model, class Options>
Fp32AndBf16<Model> fp32_and_bf16(const Options& options, const std::string& weights) {
  Fp32AndBf16<Model> pair{Model(options), Model(options)};
  load_fixture_weights(pair.fp32, weights, at::kFloat);
  load_fixture_weights(pair.bf16, weights, at::kBFloat16);
  CHECK(floating_tensors_are(*pair.bf16, at::kBFloat16));
  return pair;
}

constexpr double kCpuSpread = 2.5;

void check_bf16_close(const std::string& what, const at::Tensor& bf16, const at::Tensor& fp32, double given_bound) {
  const double bound = given_bound * kCpuSpread;
  REQUIRE(bf16.sizes() == fp32.sizes());
  CHECK(bf16.to(at::kFloat).isfinite().all().item<bool>());
  const double error = test::scaled_error(bf16, fp32);
  INFO(what << ": bf16 vs fp32 scaled error " << error << " (bound " << bound << ")");
  CHECK(error <= bound);
}

// ---------------------------------------------------------------------------------------------------
// The stage-level checks: the same stage configured in float32 and bfloat16.
struct DtypePair {
  test::ConfiguredStage fp32;
  test::ConfiguredStage bf16;
};

DtypePair configure_both(const std::string& type, const Json& params) {
  DtypePair pair{test::configure_stage(type, params, nullptr, "stage", "float32"),
                 test::configure_stage(type, params, nullptr, "stage", "bfloat16")};
  REQUIRE(pair.fp32.stage->module() != nullptr);
  REQUIRE(pair.bf16.stage->module() != nullptr);
  CHECK(floating_tensors_are(*pair.fp32.stage->module(), at::kFloat));
  CHECK(floating_tensors_are(*pair.bf16.stage->module(), at::kBFloat16));
  return pair;
}

// Runs both with the same inputs and seed; every listed output must be float32 and close.
void check_stage_outputs(DtypePair& pair, const PortValues& inputs, const std::vector<std::string>& ports,
                         double bound) {
  auto fp32 = test::run_stage(*pair.fp32.stage, inputs, 3).outputs;
  auto bf16 = test::run_stage(*pair.bf16.stage, inputs, 3).outputs;
  for (const auto& port : ports) {
    INFO("port " << port);
    REQUIRE(bf16.count(port) == 1);
    const at::Tensor& ours = bf16.at(port).tensor();
    CHECK(ours.scalar_type() == at::kFloat);
    check_bf16_close(port, ours, fp32.at(port).tensor(), bound);
  }
}

}  // namespace

TEST_CASE("dtype names map to scalar types and back", "[dtype]") {
  CHECK(dtype_from_name("float32") == at::kFloat);
  CHECK(dtype_from_name("bfloat16") == at::kBFloat16);
  CHECK(dtype_from_name("float16") == at::kHalf);
  CHECK_THROWS(dtype_from_name("float64"));
  for (const char* name : {"float32", "bfloat16", "float16"}) CHECK(dtype_name(dtype_from_name(name)) == name);
  CHECK(lowest_finite(at::kBFloat16) < -3e38);
  CHECK(std::isfinite(lowest_finite(at::kBFloat16)));
  CHECK(lowest_finite(at::kHalf) == -65504.0);
}

TEST_CASE("cast_floating_point casts floats in place and keeps integer buffers", "[dtype]") {
  CLIPTextConfig config;
  config.vocab_size = 50;
  config.hidden_size = 16;
  config.intermediate_size = 32;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 2;
  config.max_position_embeddings = 16;
  CLIPTextModel model(config);
  at::Tensor weight = model->text_model->embeddings->token_embedding->weight;
  cast_floating_point(*model, at::kBFloat16);
  CHECK(floating_tensors_are(*model, at::kBFloat16));
  // The same parameter object, now bf16: the module was cast, not rebuilt.
  CHECK(weight.scalar_type() == at::kBFloat16);
  for (const auto& b : model->named_buffers())
    if (b.key().find("position_ids") != std::string::npos) CHECK(b.value().scalar_type() == at::kLong);
  CHECK(floating_point_dtype(*model) == at::kBFloat16);
}

TEST_CASE("bfloat16 attention keeps its softmax in float32", "[dtype]") {
  // Scores so large that a bfloat16 softmax would round them: the float32 path stays close to the exact one.
  torch::manual_seed(0);
  auto q = torch::randn({2, 4, 9, 16}) * 3, k = torch::randn({2, 4, 9, 16}) * 3, v = torch::randn({2, 4, 9, 16});
  auto mask = torch::zeros({2, 1, 1, 9});
  mask.narrow(3, 7, 2).fill_(std::numeric_limits<float>::lowest());  // float32 mask with bf16 inputs
  auto ref = at::matmul(at::softmax(at::matmul(q, k.transpose(-2, -1)) / 4.0 + mask, -1), v);
  auto out = scaled_dot_product_attention(half_precision(q), half_precision(k), half_precision(v), mask);
  CHECK(out.scalar_type() == at::kBFloat16);
  // Measured 6.9e-3 (inputs rounded to bf16, then the bf16 products).
  check_bf16_close("attention", out, ref, 2e-2);
}

// ---------------------------------------------------------------------------------------------------
// Model families on the shared fixtures (real layouts and trained-like statistics).

TEST_CASE("CLIP text model runs in bfloat16 close to float32", "[dtype][clip_text]") {
  A2A_REQUIRE_FIXTURE("clip_text_model/model.safetensors");
  torch::NoGradGuard no_grad;
  auto config = CLIPTextConfig::from_json(test::read_json(test::fixture_path("clip_text_model/config.json")));
  auto [fp32, bf16] = fp32_and_bf16<CLIPTextModel>(config, "clip_text_model/model.safetensors");
  auto ids = load_safetensors(test::fixture_path("clip_text_model/inputs.safetensors")).at("input_ids");
  auto ref = fp32->forward(ids);
  auto out = bf16->forward(ids);
  CHECK(out.last_hidden_state.scalar_type() == at::kBFloat16);  // models return their compute dtype
  check_bf16_close("last_hidden_state", out.last_hidden_state, ref.last_hidden_state, 5e-2);  // measured 1.6e-2
  check_bf16_close("pooler_output", out.pooler_output, ref.pooler_output, 5e-2);              // measured 1.3e-2
}

TEST_CASE("CLAP text model runs in bfloat16 close to float32", "[dtype][clap_text]") {
  const std::string folder = "clap_text_model_with_projection";
  A2A_REQUIRE_FIXTURE(folder + "/model.safetensors");
  torch::NoGradGuard no_grad;
  auto config = ClapTextConfig::from_json(test::read_json(test::fixture_path(folder + "/config.json")));
  auto [fp32, bf16] = fp32_and_bf16<ClapTextModelWithProjection>(config, folder + "/model.safetensors");
  auto inputs = load_safetensors(test::fixture_path(folder + "/inputs.safetensors"));
  // The fixture pads its second row: the padding mask is exercised too.
  auto ref = fp32->forward(inputs.at("input_ids"), inputs.at("attention_mask"));
  auto out = bf16->forward(inputs.at("input_ids"), inputs.at("attention_mask"));
  CHECK(out.text_embeds.scalar_type() == at::kBFloat16);
  check_bf16_close("text_embeds", out.text_embeds, ref.text_embeds, 2e-2);                    // measured 6.0e-3
  check_bf16_close("last_hidden_state", out.last_hidden_state, ref.last_hidden_state, 5e-2);  // measured 1.8e-2
}

TEST_CASE("Llama runs in bfloat16 close to float32, logits in float32", "[dtype][llama]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  torch::NoGradGuard no_grad;
  auto fp32 = load_llama(test::fixture_path("llama_causal_lm"));
  auto bf16 = load_llama(test::fixture_path("llama_causal_lm"), "cpu", "", at::kBFloat16);
  CHECK(floating_tensors_are(*bf16.model, at::kBFloat16));
  auto ids = load_safetensors(test::fixture_path("llama_causal_lm/inputs.safetensors")).at("input_ids");
  auto ref = fp32.model->forward(ids);
  auto out = bf16.model->forward(ids);
  CHECK(out.scalar_type() == at::kFloat);      // documented: logits are float32
  check_bf16_close("logits", out, ref, 5e-2);  // measured 1.3e-2

  // Left padding: the additive mask must stay finite in bf16 (a float32 lowest would overflow to -inf there).
  LlamaForwardOptions call;
  call.attention_mask = torch::ones(ids.sizes(), torch::kLong);
  call.attention_mask.narrow(1, 0, 2).zero_();
  auto padded_ref = fp32.model->forward_ids(ids, call).logits;
  auto padded = bf16.model->forward_ids(ids, call).logits;
  check_bf16_close("padded logits", padded.narrow(1, 2, ids.size(1) - 2), padded_ref.narrow(1, 2, ids.size(1) - 2),
                   5e-2);  // measured 1.5e-2
}

TEST_CASE("UNet2DConditionModel runs in bfloat16 close to float32", "[dtype][unet2d]") {
  A2A_REQUIRE_FIXTURE("unet2d_condition/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto options = UNet2DConditionOptions::from_file(test::fixture_path("unet2d_condition/config.json"));
  auto [fp32, bf16] =
      fp32_and_bf16<UNet2DConditionModel>(options, "unet2d_condition/diffusion_pytorch_model.safetensors");
  auto in = load_safetensors(test::fixture_path("unet2d_condition/inputs.safetensors"));
  auto ref = fp32->forward(in.at("sample"), in.at("timestep"), in.at("encoder_hidden_states"));
  auto out =
      bf16->forward(half_precision(in.at("sample")), in.at("timestep"), half_precision(in.at("encoder_hidden_states")));
  CHECK(out.scalar_type() == at::kBFloat16);
  check_bf16_close("sample", out, ref, 6e-2);  // measured 2.1e-2
}

TEST_CASE("AudioLDM's UNet (class-conditioned) runs in bfloat16 close to float32", "[dtype][audio_diffusion]") {
  const std::string folder = "audioldm_unet2d_condition";
  A2A_REQUIRE_FIXTURE(folder + "/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto options = UNet2DConditionOptions::from_file(test::fixture_path(folder + "/config.json"));
  auto [fp32, bf16] = fp32_and_bf16<UNet2DConditionModel>(options, folder + "/diffusion_pytorch_model.safetensors");
  auto in = load_safetensors(test::fixture_path(folder + "/inputs.safetensors"));
  auto ref = fp32->forward(in.at("sample"), in.at("timestep"), {}, in.at("class_labels"));
  auto out =
      bf16->forward(half_precision(in.at("sample")), in.at("timestep"), {}, half_precision(in.at("class_labels")));
  CHECK(out.scalar_type() == at::kBFloat16);
  check_bf16_close("sample", out, ref, 6e-2);  // measured 2.0e-2
}

TEST_CASE("AutoencoderKL encodes and decodes in bfloat16 close to float32", "[dtype][vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto options = AutoencoderKLOptions::from_json(test::read_json(test::fixture_path("autoencoder_kl/config.json")));
  auto [fp32, bf16] = fp32_and_bf16<AutoencoderKL>(options, "autoencoder_kl/diffusion_pytorch_model.safetensors");
  auto in = load_safetensors(test::fixture_path("autoencoder_kl/inputs.safetensors"));
  auto ref = fp32->encode(in.at("image"));
  auto out = bf16->encode(half_precision(in.at("image")));
  CHECK(out.mean.scalar_type() == at::kBFloat16);
  check_bf16_close("latent mean", out.mean, ref.mean, 4e-2);  // measured 1.2e-2
  auto decoded_ref = fp32->decode(in.at("z"));
  auto decoded = bf16->decode(half_precision(in.at("z")));
  check_bf16_close("decoded", decoded, decoded_ref, 4e-2);  // measured 1.4e-2
}

TEST_CASE("SpeechT5 HiFi-GAN runs in bfloat16 close to float32", "[dtype][hifigan]") {
  A2A_REQUIRE_FIXTURE("speecht5_hifigan/model.safetensors");
  torch::NoGradGuard no_grad;
  auto config = SpeechT5HifiGanConfig::from_json(test::read_json(test::fixture_path("speecht5_hifigan/config.json")));
  auto [fp32, bf16] = fp32_and_bf16<SpeechT5HifiGan>(config, "speecht5_hifigan/model.safetensors");
  auto mel = load_safetensors(test::fixture_path("speecht5_hifigan/inputs.safetensors")).at("spectrogram");
  auto ref = fp32->forward(mel);
  auto out = bf16->forward(half_precision(mel));
  CHECK(out.scalar_type() == at::kBFloat16);
  check_bf16_close("waveform", out, ref, 3e-2);  // measured 7.9e-3
}

TEST_CASE("NExT-GPT output projection runs in bfloat16 close to float32", "[dtype][output_projection]") {
  torch::NoGradGuard no_grad;
  OutputProjectionOptions o;
  o.in_dim = 64;
  o.out_dim = 32;
  o.num_input_tokens = 4;
  o.num_output_tokens = 8;
  o.hidden_dim = 32;
  o.nhead = 4;
  o.num_encoder_layers = o.num_decoder_layers = 2;
  o.dim_feedforward = 128;
  OutputProjection fp32(o), bf16(o);
  initialize_seeded_weights(*fp32, 5);
  initialize_seeded_weights(*bf16, 5);
  cast_floating_point(*bf16, at::kBFloat16);
  CHECK(floating_tensors_are(*bf16, at::kBFloat16));
  torch::manual_seed(1);
  auto hidden = torch::randn({2, 4, 64}), embeds = torch::randn({2, 4, 64});
  auto ref = fp32->forward(hidden, embeds);
  auto out = bf16->forward(half_precision(hidden), half_precision(embeds));
  CHECK(out.scalar_type() == at::kBFloat16);
  check_bf16_close("conditioning", out, ref, 1.2e-1);  // measured 3.9e-2 (LayerNorm-heavy, random weights)
}

// ---------------------------------------------------------------------------------------------------
// Stages with the tiny presets: configured with ctx.dtype = "bfloat16" their module holds bf16 weights and
// their outputs come back in float32, close to the float32 run.

TEST_CASE("clip_text_encoder honours dtype bfloat16", "[dtype][stage]") {
  auto pair = configure_both("clip_text_encoder", Json::object());
  PortValues inputs{{"text", Value::text("a red fox in the snow")}};
  check_stage_outputs(pair, inputs, {"embedding", "pooled", "negative_embedding"}, 4e-2);  // measured 1.4e-2
}

TEST_CASE("clap_text_encoder honours dtype bfloat16", "[dtype][stage]") {
  auto pair = configure_both("clap_text_encoder", Json::object());
  PortValues inputs{{"text", Value::text("a dog barking in the rain")}};
  check_stage_outputs(pair, inputs, {"embedding", "negative_embedding"}, 2e-2);  // measured 6.3e-3
}

TEST_CASE("llm honours dtype bfloat16", "[dtype][stage]") {
  const Json params = {{"preset", "tiny"}, {"max_new_tokens", 4}};
  auto pair = configure_both("llm", params);
  PortValues inputs{{"prompt", Value::text("hello")}};
  auto fp32 = test::run_stage(*pair.fp32.stage, inputs, 3).outputs;
  auto bf16 = test::run_stage(*pair.bf16.stage, inputs, 3).outputs;
  // Greedy tokens of a random tiny model may flip on near-ties, so only their count is compared; the
  // logits of the stage's own modules are compared below.
  REQUIRE(bf16.count("tokens") == 1);
  CHECK(bf16.at("tokens").tensor().scalar_type() == at::kLong);
  CHECK(bf16.at("tokens").tensor().numel() == fp32.at("tokens").tensor().numel());

  torch::NoGradGuard no_grad;
  auto* ref_model = dynamic_cast<LlamaForCausalLMImpl*>(pair.fp32.stage->module());
  auto* model = dynamic_cast<LlamaForCausalLMImpl*>(pair.bf16.stage->module());
  REQUIRE(ref_model != nullptr);
  REQUIRE(model != nullptr);
  const auto ids = torch::tensor({104, 101, 108, 108, 111}, torch::kLong).unsqueeze(0);  // "hello" as bytes
  const auto logits = model->forward(ids);
  CHECK(logits.scalar_type() == at::kFloat);
  check_bf16_close("logits", logits, ref_model->forward(ids), 5e-2);  // measured 1.4e-2
}

TEST_CASE("latent_diffusion honours dtype bfloat16, latents and scheduler in float32", "[dtype][stage]") {
  const Json params = {{"steps", 3}, {"width", 16}, {"height", 16}, {"seed", 7}};
  auto pair = configure_both("latent_diffusion", params);
  torch::manual_seed(2);
  PortValues inputs{{"conditioning", Value::embedding(torch::randn({1, 77, 32}))},
                    {"negative_conditioning", Value::embedding(torch::randn({1, 77, 32}))}};
  check_stage_outputs(pair, inputs, {"latent"}, 1e-1);  // measured 3.5e-2 (3 guided steps)
}

TEST_CASE("audio_diffusion honours dtype bfloat16", "[dtype][stage]") {
  const Json params = {{"steps", 3}, {"duration", 0.32}, {"seed", 7}};
  auto pair = configure_both("audio_diffusion", params);
  torch::manual_seed(3);
  PortValues inputs{{"conditioning", Value::embedding(torch::randn({1, 1, 32}))}};
  check_stage_outputs(pair, inputs, {"latent"}, 5e-2);  // measured 1.7e-2
}

TEST_CASE("vae_encode and vae_decode honour dtype bfloat16", "[dtype][stage]") {
  torch::manual_seed(4);
  auto encode = configure_both("vae_encode", {{"sample_mode", "mean"}});
  check_stage_outputs(encode, {{"image", Value::image(torch::rand({1, 3, 16, 16}))}}, {"latent"}, 2e-2);  // 5.1e-3
  auto decode = configure_both("vae_decode", Json::object());
  check_stage_outputs(decode, {{"latent", Value::latent(torch::randn({1, 4, 8, 8}))}}, {"image", "sample"},
                      4e-2);  // measured 1.3e-2
}

TEST_CASE("vae with float16 and force_upcast stays float32", "[dtype][stage]") {
  // diffusers' force_upcast: a float16 VAE decodes in float32. The tiny preset's config sets it.
  auto stage = test::configure_stage("vae_decode", Json::object(), nullptr, "stage", "float16");
  CHECK(floating_tensors_are(*stage.stage->module(), at::kFloat));
}

TEST_CASE("hifigan honours dtype bfloat16", "[dtype][stage]") {
  auto pair = configure_both("hifigan", Json::object());
  torch::manual_seed(5);
  PortValues inputs{{"spectrogram", Value::tensor(torch::randn({1, 1, 12, 64}))}};
  check_stage_outputs(pair, inputs, {"audio"}, 3e-2);  // measured 1.0e-2
}

TEST_CASE("input_projection and output_projection honour dtype bfloat16", "[dtype][stage]") {
  torch::manual_seed(6);
  auto input = configure_both("input_projection", {{"in_dim", 16}, {"out_dim", 24}});
  check_stage_outputs(input, {{"embedding", Value::embedding(torch::randn({1, 3, 16}))}}, {"embedding"},
                      1e-2);  // measured 2.2e-3
  const Json params = {
      {"in_dim", 24}, {"out_dim", 16}, {"num_input_tokens", 4}, {"num_output_tokens", 6}, {"hidden_dim", 32},
      {"nhead", 4},   {"layers", 1}};
  auto output = configure_both("output_projection", params);
  check_stage_outputs(output, {{"signal", Value::embedding(torch::randn({1, 4, 24}))}}, {"embedding"},
                      4e-2);  // measured 1.1e-2
}

TEST_CASE("torchscript casts its module to dtype bfloat16", "[dtype][stage][torchscript]") {
  const std::string path = (std::filesystem::path(test::scratch_dir()) / "dtype_scaled.pt").string();
  torch::jit::Module m("Scaled");
  m.register_parameter("weight", torch::full({4}, 1.5), /*is_buffer=*/false);
  m.define(R"JIT(
def forward(self, x):
    return x * self.weight, torch.full([1], float(self.weight.element_size()))
)JIT");
  m.save(path);
  const Json params = {{"path", path},
                       {"inputs", {{"x", "tensor"}}},
                       {"outputs", {{"y", "tensor"}, {"bytes", "tensor"}}},
                       {"output_order", {"y", "bytes"}}};
  auto fp32 = test::configure_stage("torchscript", params, nullptr, "stage", "float32");
  auto bf16 = test::configure_stage("torchscript", params, nullptr, "stage", "bfloat16");
  PortValues inputs{{"x", Value::tensor(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}))}};
  auto ref = test::run_stage(*fp32.stage, inputs).outputs;
  auto out = test::run_stage(*bf16.stage, inputs).outputs;
  CHECK(ref.at("bytes").tensor().item<float>() == 4.0f);
  CHECK(out.at("bytes").tensor().item<float>() == 2.0f);  // the parameter is bf16 inside the script
  CHECK(out.at("y").tensor().scalar_type() == at::kFloat);
  check_bf16_close("y", out.at("y").tensor(), ref.at("y").tensor(), 1e-2);  // exact: small integers times 1.5
}

TEST_CASE("model stages declare the dtypes they honour", "[dtype][stage]") {
  for (const char* type :
       {"clip_text_encoder", "clap_text_encoder", "llm", "latent_diffusion", "audio_diffusion", "vae_encode",
        "vae_decode", "hifigan", "input_projection", "output_projection", "torchscript"}) {
    INFO(type);
    const StageInfo* info = StageRegistry::global().find(type);
    REQUIRE(info != nullptr);
    CHECK(info->dtypes == std::vector<std::string>{"float32", "bfloat16", "float16"});
  }
  // Stages without weights compute as they must (Griffin-Lim in float32: its STFT has no half-precision CPU
  // kernels) whatever the pipeline's dtype, so a bfloat16 graph may use them.
  for (const char* type : {"griffin_lim", "mel_spectrogram", "resample"}) {
    INFO(type);
    CHECK(StageRegistry::global().find(type)->dtypes.empty());
  }
}

// ---------------------------------------------------------------------------------------------------
TEST_CASE("e2e: text_to_image with dtype bfloat16 gives an image close to float32", "[dtype][e2e_text_to_image]") {
  const std::filesystem::path base = std::filesystem::path(test::scratch_dir()) / "dtype_text_to_image";
  std::filesystem::create_directories(base);
  REQUIRE(test::run_shipped_config("text_to_image.yaml", (base / "fp32").string(), "MODEL= SCHEDULER=") == 0);
  REQUIRE(test::run_shipped_config("text_to_image.yaml", (base / "bf16").string(),
                                   "MODEL= SCHEDULER=", "--set dtype=bfloat16") == 0);
  cv::Mat fp32 = cv::imread((base / "fp32" / "image.png").string(), cv::IMREAD_UNCHANGED);
  cv::Mat bf16 = cv::imread((base / "bf16" / "image.png").string(), cv::IMREAD_UNCHANGED);
  REQUIRE(!fp32.empty());
  REQUIRE(bf16.size() == fp32.size());
  cv::Mat difference;
  cv::absdiff(fp32, bf16, difference);
  double largest = 0.0;
  cv::minMaxLoc(difference.reshape(1), nullptr, &largest);
  const double mean = cv::mean(difference.reshape(1))[0];
  INFO("8-bit pixels: max difference " << largest << ", mean " << mean);
  // Measured: max 19, mean 1.6 of 255 (text encoder, 4 guided UNet steps and the VAE all in bf16); max 50,
  // mean 5.7 on the AMD EPYC above.
  CHECK(largest <= 48.0 * kCpuSpread);
  CHECK(mean <= 5.0 * kCpuSpread);
}
