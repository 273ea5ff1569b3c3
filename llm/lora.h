#pragma once
// Merging a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) into base weights at
// load time: W' = W + scale * B @ A, scale = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora),
// with per-module rank_pattern / alpha_pattern overrides.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "weights/state_dict.h"

namespace a2a {

struct LoraMergeReport {
  std::vector<std::string> merged;    // base keys that received a low-rank update
  std::vector<std::string> replaced;  // base keys replaced by full tensors from the adapter (modules_to_save)
};

// The scale PEFT applies to the named module (e.g. "model.layers.0.self_attn.q_proj").
double lora_scale(const nlohmann::json& adapter_config, const std::string& module_name);

// Returns the base tensors with the adapter merged in (the base map is not modified). Throws
// a2a::Error (input, "bad_lora") when a file is missing, a LoRA pair is incomplete, a target weight
// does not exist or the shapes do not fit.
TensorMap merge_lora(const TensorMap& base, const std::string& adapter_dir, LoraMergeReport* report = nullptr);

}  // namespace a2a
