// YAML configs: loading (size, depth and alias bounds, locations) and every validation pass.
#include <filesystem>

#include "fuzz/fake_stages.h"
#include "fuzz/fuzz_target.h"
#include "pipeline/config_loader.h"

namespace a2a::fuzz {

namespace {

void yaml_config(const Bytes& input) {
  LoadLimits limits;
  limits.max_value_nodes = 20000;  // the bounds themselves are tested; a smaller budget keeps runs fast
  limits.max_stages = 200;
  GraphBuilder builder = parse_graph_yaml(input, "fuzz.yaml", {}, limits);
  builder.build(fake_stage_registry());
}

std::vector<std::pair<std::string, Bytes>> yaml_config_seeds() {
  std::vector<std::pair<std::string, Bytes>> seeds;
  int n = 0;
  for (const auto& text : fake_stage_configs()) seeds.push_back({"fake_" + std::to_string(n++) + ".yaml", text});
  if (std::filesystem::is_directory("configs"))
    for (const auto& entry : std::filesystem::directory_iterator("configs"))
      seeds.push_back({"shipped_" + entry.path().filename().string(), read_bytes(entry.path().string())});
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    laughs += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 9; ++i) laughs += std::string(i ? ", *" : "*") + char(level - 1);
    laughs += "]\n";
  }
  seeds.push_back(
      {"billion_laughs.yaml",
       laughs + "stages:\n  - id: s\n    type: fake_text\n    params:\n      text: *i\noutputs: {x: s.text}\n"});
  seeds.push_back({"deep.yaml", "stages:\n  - id: s\n    type: fake_transform\n    params:\n      extra: " +
                                    std::string(200, '[') + std::string(200, ']') + "\noutputs: {x: s.text}\n"});
  seeds.push_back(
      {"nan.yaml",
       "stages:\n  - {id: t, type: fake_transform, params: {scale: -nan}, inputs: {text: inputs.p}}\ninputs: {p: text}\noutputs: {x: t.text}\n"});
  return seeds;
}

}  // namespace

A2A_FUZZ_TARGET("yaml_config",
                "YAML config loading (document, alias, depth and stage-count bounds) and every "
                "validation pass over a registry of fake stages",
                yaml_config, yaml_config_seeds);

}  // namespace a2a::fuzz
