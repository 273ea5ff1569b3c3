// A PEFT adapter_config.json merged with a fixed adapter_model.safetensors into a small base.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz/fuzz_target.h"
#include "llm/lora.h"
#include "weights/safetensors.h"

namespace a2a::fuzz {

namespace {

const char kModule[] = "model.layers.0.self_attn.q_proj";

std::string adapter_folder() {
  static const std::string folder = [] {
    const std::string dir = scratch_folder() + "/adapter";
    std::filesystem::create_directories(dir);
    const std::string key = std::string("base_model.model.") + kModule;
    save_safetensors(dir + "/adapter_model.safetensors",
                     {{key + ".lora_A.weight", at::ones({2, 4})}, {key + ".lora_B.weight", at::ones({4, 2})}});
    return dir;
  }();
  return folder;
}

void lora_adapter(const Bytes& input) {
  const std::string folder = adapter_folder();
  scratch_file("adapter/adapter_config.json", input);
  const TensorMap base{{std::string(kModule) + ".weight", at::zeros({4, 4})},
                       {"model.layers.0.self_attn.k_proj.weight", at::zeros({4, 4})}};
  LoraMergeReport report;
  TensorMap merged = merge_lora(base, folder, &report);
  fuzz_check(merged.size() >= base.size(), "the merge lost base tensors");
  for (const auto& key : report.merged) {
    fuzz_check(base.count(key) == 1, "a merged key is not a base key");
    fuzz_check(merged.at(key).sizes() == base.at(key).sizes(), "a merge changed a tensor's shape");
  }
}

std::vector<std::pair<std::string, Bytes>> lora_adapter_seeds() {
  return {{"plain.json", R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]})"},
          {"rslora.json", R"({"r": 2, "lora_alpha": 16, "use_rslora": true, "rank_pattern": {"q_proj": 2},
                              "alpha_pattern": {"layers.0.self_attn.q_proj": 8}})"},
          {"save.json", R"({"r": 2, "lora_alpha": 2, "modules_to_save": ["lm_head"], "fan_in_fan_out": false})"},
          {"bad_rank.json", R"({"r": 0, "lora_alpha": "x", "rank_pattern": {"q_proj": "two"}})"}};
}

}  // namespace

A2A_FUZZ_TARGET("lora_adapter",
                "PEFT adapter_config.json (r, lora_alpha, rslora, rank/alpha patterns) merged with "
                "an adapter into base weights",
                lora_adapter, lora_adapter_seeds);

}  // namespace a2a::fuzz
