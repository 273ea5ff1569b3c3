#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "llm/llama.h"
#include "llm/llama_tiny.h"
#include "pipeline/config_loader.h"
#include "pipeline/pipeline.h"
#include "pipeline/registry.h"
#include "pipeline/validation.h"
#include "stage_runner.h"
#include "test_support.h"
#include "weights/safetensors.h"

namespace {

using a2a::test::StageRun;

a2a::Json filled_params(const a2a::StageInfo& info, const a2a::Json& given) {
  return a2a::validate_stage_params(info, info.type, given);
}

StageRun run_configured(const std::string& type, const a2a::Json& params, const a2a::PortValues& inputs,
                        uint64_t seed = 1) {
  auto configured = a2a::test::configure_stage(type, params, nullptr, type);
  return a2a::test::run_stage(*configured.stage, inputs, seed, nullptr, type);
}

std::string read_file(const std::string& path) { return a2a::test::read_text(path); }

const a2a::Json kSignals = {{"image", {"[IMG0]", "[IMG1]", "[IMG2]", "[IMG3]"}}, {"audio", {"[AUD0]", "[AUD1]"}}};

}  // namespace

TEST_CASE("llm stage: tiny preset streams its text, deterministic per seed", "[llm_stage]") {
  a2a::Json params = {{"max_new_tokens", 12}, {"do_sample", true}, {"temperature", 0.9}, {"top_k", 50}};
  a2a::PortValues inputs{{"prompt", a2a::Value::text("hello")}};
  auto first = run_configured("llm", params, inputs, 5);
  auto again = run_configured("llm", params, inputs, 5);
  const auto& text = first.outputs.at("text").text();
  CHECK(first.streamed == text);
  CHECK(again.outputs.at("text").text() == text);
  auto tokens = first.outputs.at("tokens").tensor();
  CHECK(tokens.size(0) == 1);
  CHECK(tokens.size(1) >= 1);
  CHECK(tokens.size(1) <= 12);
  CHECK(at::equal(again.outputs.at("tokens").tensor(), tokens));
  auto other = run_configured("llm", params, inputs, 6);
  CHECK_FALSE(at::equal(other.outputs.at("tokens").tensor(), tokens));
}

TEST_CASE("llm stage: absent signal tokens leave their ports absent", "[llm_stage]") {
  a2a::Json params = {{"max_new_tokens", 6}, {"signal_tokens", kSignals}};
  const auto* info = a2a::StageRegistry::global().find("llm");
  REQUIRE(info != nullptr);
  auto ports = info->resolve_ports(filled_params(*info, params));
  REQUIRE(ports.output("image") != nullptr);
  REQUIRE(ports.output("audio") != nullptr);
  auto run = run_configured("llm", params, {{"prompt", a2a::Value::text("draw a cat")}});
  auto tokens = run.outputs.at("tokens").tensor();
  // The tiny model never picks the new rows (they are the mean embedding) in these few greedy steps.
  for (int64_t i = 0; i < tokens.size(1); ++i) REQUIRE(tokens[0][i].item<int64_t>() < 258);
  CHECK(run.outputs.count("image") == 0);
  CHECK(run.outputs.count("audio") == 0);
  CHECK(run.outputs.count("text") == 1);
}

TEST_CASE("llm stage: media embeddings land at their markers; wrong widths are named", "[llm_stage]") {
  a2a::Json params = {
      {"max_new_tokens", 3},
      {"media", {{"image", "<image>"}, {"audio", {{"marker", "<audio>"}, {"begin", "<A>"}, {"end", "</A>"}}}}},
      {"media_begin", "<Img>"},
      {"media_end", "</Img>"}};
  const auto* info = a2a::StageRegistry::global().find("llm");
  auto ports = info->resolve_ports(filled_params(*info, params));
  REQUIRE(ports.input("image") != nullptr);
  CHECK_FALSE(ports.input("image")->required);
  REQUIRE(ports.input("audio") != nullptr);

  // The stage's first greedy token equals the model's choice for BOS + "describe " + <Img> + rows +
  // </Img> + " please", built by hand with the same model and byte tokenizer.
  auto stage = info->create();
  stage->configure(filled_params(*info, params), a2a::ConfigureContext{});
  auto* model = dynamic_cast<a2a::LlamaForCausalLMImpl*>(stage->module());
  REQUIRE(model != nullptr);
  a2a::ByteTokenizer bytes;
  auto embed_text = [&](const std::string& text) {
    return model->embed(at::tensor(bytes.encode(text), at::kLong).unsqueeze(0));
  };
  at::manual_seed(0);
  for (int trial = 0; trial < 2; ++trial) {
    auto rows = at::randn({1, 3, 64}) * 4;
    a2a::RunContext ctx;
    auto out = stage->run(
        {{"prompt", a2a::Value::text("describe <image> please")}, {"image", a2a::Value::embedding(rows)}}, ctx);
    torch::NoGradGuard no_grad;
    auto bos = model->embed(at::full({1, 1}, a2a::ByteTokenizer::kBos, at::kLong));
    auto sequence = at::cat(
        {bos, embed_text("describe "), embed_text("<Img>"), rows, embed_text("</Img>"), embed_text(" please")}, 1);
    auto logits = model->forward_embeds(sequence).logits;
    CHECK(out.at("tokens").tensor()[0][0].item<int64_t>() == logits[0][-1].argmax().item<int64_t>());
  }

  try {
    run_configured("llm", params,
                   {{"prompt", a2a::Value::text("x")}, {"audio", a2a::Value::embedding(at::randn({1, 2, 1024}))}});
    FAIL("no error");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "bad_media_embedding");
    CHECK(e.message().find("audio") != std::string::npos);
  }
}

TEST_CASE("llm stage: an empty model uses the tiny preset with a warning", "[llm_stage]") {
  auto run = run_configured("llm", {{"model", ""}, {"max_new_tokens", 2}}, {{"prompt", a2a::Value::text("hi")}});
  REQUIRE(run.warnings.size() == 1);
  CHECK(run.warnings[0].find("tiny built-in preset") != std::string::npos);
  CHECK(run.outputs.count("text") == 1);
}

TEST_CASE("llm stage: stories260K through the stage gives llama2.c's greedy text", "[llm_stage]") {
  A2A_REQUIRE_FIXTURE("llama2c/stories260K.bin");
  auto expected = a2a::test::read_json(a2a::test::fixture_path("llama2c/expected.json"));
  const auto& item = expected["greedy"][0];
  const std::string prompt = item["prompt"].get<std::string>();
  auto run = run_configured("llm",
                            {{"model", a2a::test::fixture_path("llama2c/stories260K.bin")},
                             {"tokenizer", a2a::test::fixture_path("llama2c/tok512.bin")},
                             {"max_new_tokens", 20}},
                            {{"prompt", a2a::Value::text(prompt)}});
  const std::string text = run.outputs.at("text").text();
  CHECK(run.streamed == text);
  REQUIRE(text.size() > 10);
  // The completion continues the prompt exactly as llama2.c does.
  CHECK(item["text"].get<std::string>().rfind(prompt + text, 0) == 0);
}

TEST_CASE("llm stage: a reply that starts with a space keeps it, in the text and the stream", "[llm_stage]") {
  A2A_REQUIRE_FIXTURE("llama2c/stories260K.bin");
  auto expected = a2a::test::read_json(a2a::test::fixture_path("llama2c/expected.json"));
  const std::string story = expected["greedy"][0]["text"].get<std::string>();
  // The story up to a word whose next piece starts with a space: llama2.c continues it with " <word>".
  const size_t cut = story.find(" named");
  REQUIRE(cut != std::string::npos);
  const std::string prompt = story.substr(0, cut + 6);
  auto run = run_configured("llm",
                            {{"model", a2a::test::fixture_path("llama2c/stories260K.bin")},
                             {"tokenizer", a2a::test::fixture_path("llama2c/tok512.bin")},
                             {"max_new_tokens", 6}},
                            {{"prompt", a2a::Value::text(prompt)}});
  const std::string text = run.outputs.at("text").text();
  INFO("prompt '" << prompt << "' reply '" << text << "'");
  REQUIRE(text.size() > 2);
  CHECK(text[0] == ' ');
  CHECK(run.streamed == text);
  CHECK(story.rfind(prompt + text, 0) == 0);
}

TEST_CASE("projection stages: input 1024 -> LLM width, output [S,K,D] -> [S,M,D']", "[llm_stage]") {
  auto in = run_configured("input_projection", {{"in_dim", 16}, {"out_dim", 8}},
                           {{"embedding", a2a::Value::embedding(at::randn({1, 3, 16}))}});
  CHECK(in.outputs.at("embedding").tensor().sizes() == at::IntArrayRef({1, 3, 8}));
  auto pooled = run_configured("input_projection", {{"in_dim", 16}, {"out_dim", 8}},
                               {{"embedding", a2a::Value::tensor(at::randn({2, 16}))}});
  CHECK(pooled.outputs.at("embedding").tensor().sizes() == at::IntArrayRef({2, 1, 8}));

  a2a::Json params = {
      {"in_dim", 8}, {"out_dim", 6}, {"num_input_tokens", 4}, {"num_output_tokens", 5}, {"hidden_dim", 16},
      {"nhead", 4},  {"layers", 1}};
  auto signal = a2a::Value::embedding(at::randn({2, 4, 8})).with_aux("input_embeds", at::randn({2, 4, 8}));
  auto out = run_configured("output_projection", params, {{"signal", signal}});
  CHECK(out.outputs.at("embedding").tensor().sizes() == at::IntArrayRef({2, 5, 6}));
  CHECK(out.warnings.empty());
}

TEST_CASE("projection stage loads NExT-GPT's output projection weights", "[llm_stage]") {
  A2A_REQUIRE_FIXTURE("nextgpt/output_projection/model.safetensors");
  auto meta = a2a::test::read_json(a2a::test::fixture_path("nextgpt/output_projection/meta.json"));
  const auto& c = meta["config"];
  a2a::Json params = {{"in_dim", c["in_dim"]},
                      {"out_dim", c["out_dim"]},
                      {"num_input_tokens", c["num_input_tokens"]},
                      {"num_output_tokens", c["num_output_tokens"]},
                      {"hidden_dim", c["hidden_dim"]},
                      {"nhead", c["nhead"]},
                      {"layers", c["layers"]},
                      {"weights", a2a::test::fixture_path("nextgpt/output_projection/model.safetensors")}};
  auto inputs = a2a::load_safetensors(a2a::test::fixture_path("nextgpt/output_projection/inputs.safetensors"));
  auto outputs = a2a::load_safetensors(a2a::test::fixture_path("nextgpt/output_projection/outputs.safetensors"));
  auto signal = a2a::Value::embedding(inputs.at("hidden_states")).with_aux("input_embeds", inputs.at("input_embeds"));
  auto out = run_configured("output_projection", params, {{"signal", signal}});
  A2A_CHECK_CLOSE(out.outputs.at("embedding").tensor(), outputs.at("output"), 1e-4);
}

TEST_CASE("pipeline: a decoder behind an absent signal port is skipped", "[llm_stage]") {
  const std::string yaml = R"(
version: 1
name: signal_skip
seed: 3
inputs:
  prompt: text
stages:
  - id: llm
    type: llm
    params:
      max_new_tokens: 4
      signal_tokens: {image: ["[IMG0]", "[IMG1]", "[IMG2]", "[IMG3]"]}
    inputs: {prompt: inputs.prompt}
  - id: project
    type: output_projection
    params: {in_dim: 64, out_dim: 8, num_input_tokens: 4, num_output_tokens: 3, hidden_dim: 16, layers: 1}
    inputs: {signal: llm.image}
outputs:
  text: llm.text
  conditioning: project.embedding
)";
  a2a::Pipeline pipeline(a2a::parse_graph_yaml(yaml, a2a::test::scratch_dir() + "/signal_skip.yaml"));
  a2a::RunRequest request;
  request.inputs["prompt"] = a2a::Value::text("paint a fox");
  auto result = pipeline.run(request);
  CHECK(result.outputs.count("text") == 1);
  CHECK(result.outputs.count("conditioning") == 0);
  const auto* record = result.record("project");
  REQUIRE(record != nullptr);
  CHECK(record->status == a2a::StageRecord::Status::Skipped);
}

TEST_CASE("configs/chat.yaml runs through the CLI and saves the reply", "[llm_stage]") {
  A2A_REQUIRE_FIXTURE("llama2c/stories260K.bin");
  const std::string out_dir = a2a::test::scratch_dir() + "/chat_out";
  const std::string command = std::string(A2A_BINARY_DIR) + "/a2a run " + std::string(A2A_SOURCE_DIR) +
                              "/configs/chat.yaml --output-dir " + out_dir + " > " + out_dir + ".log 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  const std::string reply = read_file(out_dir + "/reply.txt");
  CHECK_FALSE(reply.empty());
  // The config reads ${A2A_FIXTURES:-../../shared/fixtures}, the same folder the tests use.
  auto expected = a2a::test::read_json(a2a::test::fixture_path("llama2c/expected.json"));
  const std::string story = expected["greedy"][0]["text"].get<std::string>();
  const std::string prefix = "Once upon a time";
  const size_t n = std::min(reply.size(), story.size() - prefix.size());
  CHECK(story.substr(prefix.size(), n) == reply.substr(0, n));
}

TEST_CASE("llm stage: a prompt longer than the model's context is an input error with both numbers",
          "[llm_stage][hostile]") {
  auto configured = a2a::test::configure_stage("llm", {{"preset", "tiny"}, {"max_new_tokens", 2}}, nullptr, "llm");
  const auto* llama = dynamic_cast<a2a::LlamaForCausalLMImpl*>(configured.stage->module());
  REQUIRE(llama != nullptr);
  const int64_t context = llama->options().max_position_embeddings;
  // The byte tokenizer gives one token per byte, plus BOS.
  const std::string prompt(static_cast<size_t>(context) + 10, 'a');
  try {
    a2a::test::run_stage(*configured.stage, {{"prompt", a2a::Value::text(prompt)}}, 1, nullptr, "llm");
    FAIL("a prompt past the context ran");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "prompt_too_long");
    CHECK(e.message().find(std::to_string(context) + " positions") != std::string::npos);
    CHECK(e.message().find(std::to_string(context + 11) + " tokens") != std::string::npos);
  }
}
