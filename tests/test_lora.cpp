#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "llm/llama.h"
#include "llm/lora.h"
#include "test_support.h"
#include "weights/safetensors.h"

namespace {

// Writes a safetensors file (F32 only) for the test adapter.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  nlohmann::json header;
  uint64_t offset = 0;
  std::string data;
  for (const auto& kv : tensors) {
    auto t = kv.second.contiguous().to(at::kFloat);
    const auto bytes = static_cast<uint64_t>(t.numel()) * 4;
    header[kv.first] = {{"dtype", "F32"}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    data.append(reinterpret_cast<const char*>(t.data_ptr<float>()), bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << text << data;
}

}  // namespace

TEST_CASE("PEFT LoRA merges W + alpha/r * B A into the base weights", "[lora]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  torch::NoGradGuard no_grad;
  const std::string base_dir = a2a::test::fixture_path("llama_causal_lm");
  const auto base = a2a::read_transformers_weights(base_dir);
  const std::string q = "model.layers.0.self_attn.q_proj";
  const std::string v = "model.layers.1.self_attn.v_proj";
  const std::string embed = "model.embed_tokens";
  const int64_t r = 4;
  at::manual_seed(3);
  auto qa = at::randn({r, base.at(q + ".weight").size(1)}), qb = at::randn({base.at(q + ".weight").size(0), r});
  auto va = at::randn({2, base.at(v + ".weight").size(1)}), vb = at::randn({base.at(v + ".weight").size(0), 2});
  auto ea = at::randn({r, base.at(embed + ".weight").size(0)}), eb = at::randn({base.at(embed + ".weight").size(1), r});

  const std::string adapter = a2a::test::scratch_dir() + "/lora_adapter";
  std::filesystem::create_directories(adapter);
  write_safetensors(adapter + "/adapter_model.safetensors", {{"base_model.model." + q + ".lora_A.weight", qa},
                                                             {"base_model.model." + q + ".lora_B.weight", qb},
                                                             {"base_model.model." + v + ".lora_A.weight", va},
                                                             {"base_model.model." + v + ".lora_B.weight", vb},
                                                             {"base_model.model." + embed + ".lora_embedding_A", ea},
                                                             {"base_model.model." + embed + ".lora_embedding_B", eb}});
  nlohmann::json config = {{"peft_type", "LORA"},
                           {"r", r},
                           {"lora_alpha", 16},
                           {"rank_pattern", {{"v_proj", 2}}},
                           {"target_modules", {"q_proj", "v_proj", "embed_tokens"}}};
  std::ofstream(adapter + "/adapter_config.json") << config.dump();

  a2a::LoraMergeReport report;
  auto merged = a2a::merge_lora(base, adapter, &report);
  CHECK(report.merged.size() == 3);
  A2A_CHECK_CLOSE(merged.at(q + ".weight"), base.at(q + ".weight") + (16.0 / r) * qb.matmul(qa), 1e-6);
  A2A_CHECK_CLOSE(merged.at(v + ".weight"), base.at(v + ".weight") + (16.0 / 2) * vb.matmul(va), 1e-6);
  A2A_CHECK_CLOSE(merged.at(embed + ".weight"), base.at(embed + ".weight") + (16.0 / r) * eb.matmul(ea).t(), 1e-6);
  A2A_CHECK_CLOSE(merged.at("model.layers.0.self_attn.k_proj.weight"),
                  base.at("model.layers.0.self_attn.k_proj.weight"), 0.0);

  // Loading with the adapter gives the merged model.
  auto loaded = a2a::load_llama(base_dir, "cpu", adapter);
  auto state = a2a::module_state(*loaded.model);
  A2A_CHECK_CLOSE(state.at(q + ".weight"), merged.at(q + ".weight"), 0.0);

  // rsLoRA scales by alpha / sqrt(r).
  config["use_rslora"] = true;
  CHECK(a2a::lora_scale(config, q) == Approx(16.0 / 2.0));
}

TEST_CASE("LoRA errors name the adapter and the problem", "[lora]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  const auto base = a2a::read_transformers_weights(a2a::test::fixture_path("llama_causal_lm"));
  const std::string adapter = a2a::test::scratch_dir() + "/lora_broken";
  std::filesystem::create_directories(adapter);
  std::ofstream(adapter + "/adapter_config.json") << R"({"peft_type": "LORA", "r": 2, "lora_alpha": 2})";
  write_safetensors(adapter + "/adapter_model.safetensors",
                    {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", at::ones({2, 32})}});
  try {
    a2a::merge_lora(base, adapter);
    FAIL("no error");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "bad_lora");
    CHECK(e.message().find("lacks its B matrix") != std::string::npos);
  }
  CHECK_THROWS_AS(a2a::merge_lora(base, adapter + "/missing"), a2a::Error);

  std::ofstream(adapter + "/adapter_config.json")
      << "{\"peft_type\": \"LORA\", \"x\": " + std::string(1000000, '{') + std::string(1000000, '}') + "}";
  try {
    a2a::merge_lora(base, adapter);
    FAIL("no error");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "json_too_deep");
    CHECK(e.message().find("adapter_config.json") != std::string::npos);
  }
}

TEST_CASE("adapter_config.json numbers of the wrong type are bad_lora, not a crash", "[lora]") {
  using nlohmann::json;
  const std::string module = "model.layers.0.self_attn.q_proj";
  CHECK(a2a::lora_scale(json{{"r", 4}, {"lora_alpha", 8}}, module) == 2.0);
  CHECK(a2a::lora_scale(json{{"r", 4}, {"lora_alpha", 8}, {"rank_pattern", {{"q_proj", 2}}}}, module) == 4.0);
  for (const json& config : {json{{"r", "x"}}, json{{"lora_alpha", "8"}}, json{{"rank_pattern", {{"q_proj", "two"}}}},
                             json{{"alpha_pattern", {{"self_attn.q_proj", nullptr}}}, {"r", 0}}, json::array({1})}) {
    INFO(config.dump());
    try {
      a2a::lora_scale(config, module);
      FAIL("accepted");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "bad_lora");
    }
  }
}
