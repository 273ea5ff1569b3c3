#pragma once
// Graph validation in ordered passes; each pass collects every problem it finds.
//
//  1. structure   duplicate_stage_id, duplicate_input, duplicate_output, bad_setting
//  2. types       unknown_stage_type
//  3. parameters  unknown_param, param_type, param_out_of_range, param_not_allowed, missing_param,
//                 path_not_found, unsupported_dtype, and the codes of each stage's own rules (check_params)
//  4. ports       unknown_port, duplicate_wiring, bad_source, unknown_source, required_input_unwired, bad_ports
//  5. port types  port_type_mismatch
//  6. cycles      cycle
//  7. outputs     unknown_output_source, save_path_escapes, save_type_mismatch
//
// (YAML syntax and unknown keys, codes yaml_syntax, unknown_key, duplicate_key, missing_key, bad_value, are
// reported by the YAML loader before these passes.)
#include <map>
#include <string>
#include <vector>

#include "base/suggest.h"
#include "pipeline/graph.h"
#include "pipeline/registry.h"

namespace a2a {

struct ValidatedGraph {
  GraphSpec spec;  // parameters filled with defaults, Path parameters resolved, ${VAR} expanded
  std::map<std::string, StagePorts> ports;
  std::map<std::string, const StageInfo*> infos;
  const StageRegistry* registry = nullptr;  // the registry it was validated against
};

// Which passes run: every one, or only those that read each stage on its own (structure, types,
// parameters), for a graph the YAML loader found incomplete: its later passes would report the gaps again.
enum class ValidationScope { Full, StagesOnly };

// Runs the passes and returns all errors (empty when the graph is valid). On success `out` holds
// the normalised graph.
std::vector<Error> validate_graph(const GraphSpec& spec, const StageRegistry& registry, ValidatedGraph* out,
                                  ValidationScope scope = ValidationScope::Full);

// The parameter pass alone, for one stage outside a graph (research code, tests): the values
// checked, defaults filled in, Path parameters resolved against base_dir. Throws ErrorList.
Json validate_stage_params(const StageInfo& info, const std::string& stage_id, const Json& params,
                           const std::string& base_dir = "");

// Throws ErrorList when validation fails.
ValidatedGraph validate_or_throw(const GraphSpec& spec, const StageRegistry& registry = StageRegistry::global());

// Expands ${VAR} and ${VAR:-default} from the environment. Unset variables without a default
// expand to "".
std::string expand_environment(const std::string& text);

// The stable list of validation codes, for docs and tests.
const std::vector<std::string>& validation_codes();

}  // namespace a2a
