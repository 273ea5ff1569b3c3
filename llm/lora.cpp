#include "llm/lora.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/error.h"
#include "base/json_parse.h"
#include "base/path_query.h"
#include "weights/safetensors.h"

namespace a2a {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PEFT matches a pattern key against the end of the module name at a dot boundary.
const nlohmann::json* pattern_value(const nlohmann::json& config, const char* field, const std::string& module) {
  auto it = config.find(field);
  if (it == config.end() || !it->is_object()) return nullptr;
  for (const auto& kv : it->items()) {
    if (module == kv.key() || ends_with(module, "." + kv.key())) return &kv.value();
  }
  return nullptr;
}

std::string strip(std::string key) {
  const std::string prefix = "base_model.model.";
  if (key.rfind(prefix, 0) == 0) key = key.substr(prefix.size());
  return key;
}

// A number of adapter_config.json (the field, or a pattern's entry for the module); anything else is bad_lora.
double adapter_number(const nlohmann::json* value, double fallback, const std::string& what) {
  if (!value || value->is_null()) return fallback;
  if (!value->is_number() || !std::isfinite(value->get<double>()))
    throw_input_error("bad_lora", "adapter_config.json: " + what + " must be a finite number, got " + value->dump());
  return value->get<double>();
}

const nlohmann::json* field(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  return it == config.end() ? nullptr : &*it;
}

}  // namespace

double lora_scale(const nlohmann::json& config, const std::string& module_name) {
  if (!config.is_object()) throw_input_error("bad_lora", "adapter_config.json is not a JSON object");
  double r = adapter_number(field(config, "r"), 8.0, "r");
  double alpha = adapter_number(field(config, "lora_alpha"), 8.0, "lora_alpha");
  r = adapter_number(pattern_value(config, "rank_pattern", module_name), r, "rank_pattern for " + module_name);
  alpha =
      adapter_number(pattern_value(config, "alpha_pattern", module_name), alpha, "alpha_pattern for " + module_name);
  if (r <= 0) throw_input_error("bad_lora", "LoRA rank must be positive for " + module_name);
  const bool rslora =
      config.contains("use_rslora") && config["use_rslora"].is_boolean() && config["use_rslora"].get<bool>();
  return rslora ? alpha / std::sqrt(r) : alpha / r;
}

TensorMap merge_lora(const TensorMap& base, const std::string& adapter_dir, LoraMergeReport* report) {
  const auto config_path = fs::path(adapter_dir) / "adapter_config.json";
  const auto weights_path = fs::path(adapter_dir) / "adapter_model.safetensors";
  if (!path_exists(config_path)) throw_input_error("bad_lora", adapter_dir + " has no adapter_config.json");
  if (!path_exists(weights_path)) throw_input_error("bad_lora", adapter_dir + " has no adapter_model.safetensors");
  nlohmann::json config;
  try {
    std::ifstream in(config_path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    config = parse_json_bounded(text, config_path.string());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_input_error("bad_lora", config_path.string() + " is not valid JSON: " + e.what());
  }
  if (!config.is_object()) throw_input_error("bad_lora", config_path.string() + " is not a JSON object");
  if (config.contains("peft_type") && config["peft_type"] != "LORA")
    throw_input_error("bad_lora", config_path.string() + ": peft_type " + config["peft_type"].dump() + " is not LORA");
  const nlohmann::json* fan = field(config, "fan_in_fan_out");
  if (fan && !fan->is_null() && !fan->is_boolean())
    throw_input_error("bad_lora", config_path.string() + ": fan_in_fan_out must be true or false, got " + fan->dump());
  const bool fan_in_fan_out = fan && fan->is_boolean() && fan->get<bool>();

  struct Pair {
    at::Tensor a, b;
    bool embedding = false;
  };
  std::map<std::string, Pair> pairs;  // by module name
  TensorMap merged = base;
  LoraMergeReport local;
  for (const auto& kv : load_safetensors(weights_path.string())) {
    std::string key = strip(kv.first);
    // Some writers keep the adapter name: "q_proj.lora_A.default.weight".
    for (const char* marker : {".lora_A.", ".lora_B."}) {
      auto pos = key.find(marker);
      if (pos != std::string::npos && !ends_with(key, std::string(marker) + "weight")) {
        key = key.substr(0, pos + std::string(marker).size()) + "weight";
      }
    }
    auto take = [&](const std::string& suffix, bool is_a, bool embedding) {
      if (!ends_with(key, suffix)) return false;
      auto& pair = pairs[key.substr(0, key.size() - suffix.size())];
      (is_a ? pair.a : pair.b) = kv.second;
      pair.embedding = embedding;
      return true;
    };
    if (take(".lora_A.weight", true, false) || take(".lora_B.weight", false, false) ||
        take(".lora_embedding_A", true, true) || take(".lora_embedding_B", false, true))
      continue;
    // A full tensor (modules_to_save) replaces the base weight.
    auto it = merged.find(key);
    if (it == merged.end())
      throw_input_error("bad_lora",
                        weights_path.string() + ": tensor '" + kv.first + "' matches no base weight ('" + key + "')");
    if (it->second.sizes() != kv.second.sizes())
      throw_input_error("bad_lora",
                        weights_path.string() + ": '" + kv.first + "' has another shape than the base weight");
    it->second = kv.second.to(it->second.scalar_type());
    local.replaced.push_back(key);
  }
  for (const auto& kv : pairs) {
    const std::string& module = kv.first;
    const Pair& pair = kv.second;
    if (!pair.a.defined() || !pair.b.defined())
      throw_input_error("bad_lora", weights_path.string() + ": module '" + module + "' lacks its " +
                                        (pair.a.defined() ? "B" : "A") + " matrix");
    const std::string target = module + ".weight";
    auto it = merged.find(target);
    if (it == merged.end())
      throw_input_error("bad_lora", weights_path.string() + ": LoRA target '" + target + "' is not a base weight");
    const double scale = lora_scale(config, module);
    at::Tensor a = pair.a.to(at::kFloat), b = pair.b.to(at::kFloat);
    at::Tensor delta = at::matmul(b, a);
    if (pair.embedding || fan_in_fan_out) delta = delta.t();
    const at::Tensor& w = it->second;
    if (delta.sizes() != w.sizes())
      throw_input_error("bad_lora", weights_path.string() + ": LoRA update of '" + target + "' has shape " +
                                        std::to_string(delta.size(0)) + "x" + std::to_string(delta.size(1)) +
                                        ", the base weight " + std::to_string(w.size(0)) + "x" +
                                        std::to_string(w.size(1)));
    it->second = (w.to(at::kFloat) + scale * delta).to(w.scalar_type());
    local.merged.push_back(target);
  }
  if (report) *report = std::move(local);
  return merged;
}

}  // namespace a2a
