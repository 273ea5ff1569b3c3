#include <torch/torch.h>

#include "llm/output_projection.h"
#include "test_support.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using a2a::test::fixture_path;

TEST_CASE("NExT-GPT output projection (transformer mode) matches its fixture", "[output_projection]") {
  A2A_REQUIRE_FIXTURE("nextgpt/output_projection/model.safetensors");
  torch::NoGradGuard no_grad;
  auto meta = a2a::test::read_json(fixture_path("nextgpt/output_projection/meta.json"));
  auto options = a2a::OutputProjectionOptions::from_json(meta["config"]);
  options.mode = "transformer";
  a2a::OutputProjection projection(options);
  a2a::LoadOptions load;
  load.source = "nextgpt/output_projection";
  auto report = a2a::load_state_dict(
      *projection, a2a::load_safetensors(fixture_path("nextgpt/output_projection/model.safetensors")), load);
  CHECK(report.ok());
  projection->eval();
  auto inputs = a2a::load_safetensors(fixture_path("nextgpt/output_projection/inputs.safetensors"));
  auto outputs = a2a::load_safetensors(fixture_path("nextgpt/output_projection/outputs.safetensors"));
  auto out = projection->forward(inputs.at("hidden_states"), inputs.at("input_embeds"));
  CHECK(out.size(1) == meta["config"]["num_output_tokens"].get<int64_t>());
  A2A_CHECK_CLOSE(out, outputs.at("output"), 1e-4);
}

TEST_CASE("output projection linear mode keeps the first M rows", "[output_projection]") {
  torch::NoGradGuard no_grad;
  a2a::OutputProjectionOptions options;
  options.mode = "linear";
  options.in_dim = 6;
  options.out_dim = 5;
  options.num_output_tokens = 2;
  a2a::OutputProjection projection(options);
  auto names = a2a::module_state(*projection);
  CHECK(names.count("model.weight") == 1);
  CHECK(names.size() == 2);
  auto x = at::randn({1, 4, 6});
  auto out = projection->forward(x);
  REQUIRE(out.sizes() == at::IntArrayRef({1, 2, 5}));
  A2A_CHECK_CLOSE(out, at::linear(x, names["model.weight"], names["model.bias"]).narrow(1, 0, 2), 1e-6);
}

TEST_CASE("output projection names its parameters like torch.nn.Transformer", "[output_projection]") {
  a2a::OutputProjectionOptions options;  // NExT-GPT's image sizes
  auto state = a2a::module_state(*a2a::OutputProjection(options));
  CHECK(state.at("tfm.encoder.layers.3.self_attn.in_proj_weight").sizes() == at::IntArrayRef({1536, 512}));
  CHECK(state.at("tfm.decoder.layers.3.multihead_attn.out_proj.weight").sizes() == at::IntArrayRef({512, 512}));
  CHECK(state.at("tfm.decoder.layers.0.linear1.weight").sizes() == at::IntArrayRef({2048, 512}));
  CHECK(state.at("tfm.decoder.norm.weight").sizes() == at::IntArrayRef({512}));
  CHECK(state.at("query_embs").sizes() == at::IntArrayRef({1, 77, 512}));
  CHECK(state.at("fc.weight").sizes() == at::IntArrayRef({512, 4096}));
  CHECK(state.at("model.weight").sizes() == at::IntArrayRef({768, 512}));
}
