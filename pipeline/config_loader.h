#pragma once
// YAML (schema v1) to a GraphBuilder, with --set overrides applied before conversion.
//
//   version: 1                        # optional, must be 1
//   name, device, dtype, seed, threads, workers
//   plugins: [path/libfoo.so]
//   inputs:  NAME: {type: TYPE, default: VALUE, doc: TEXT}    (or NAME: TYPE)
//   stages:  - {id: ID, type: TYPE, params: {...}, inputs: {PORT: inputs.NAME | STAGE.PORT}}
//   outputs: NAME: {from: STAGE.PORT, save: FILE}             (or NAME: STAGE.PORT)
#include <string>
#include <vector>

#include "pipeline/builder.h"

namespace a2a {

// Bounds on what a config may make the loader hold, so that a hostile file is an error, not an
// exhausted machine: each exceeded bound is a `too_large` error.
struct LoadLimits {
  size_t max_bytes = size_t{16} << 20;  // the YAML text
  size_t max_stages = 10000;            // entries of the stages list
  size_t max_value_nodes = 1000000;     // parameter and default values, aliases expanded each time used
  int max_depth = 64;                   // nesting of a value
};

// Reads and converts a YAML file. Unknown keys and malformed entries are collected and kept in the
// builder (GraphBuilder::load_errors), reported by build() with what validation finds; syntax errors and
// exceeded limits throw at once. `sets` are "KEY=VALUE" overrides (see apply_override); an error in a
// value they set is located at the --set.
GraphBuilder load_graph_yaml(const std::string& path, const std::vector<std::string>& sets = {},
                             const LoadLimits& limits = {});

// Same, from text; `file` labels locations and sets the base folder for relative paths.
GraphBuilder parse_graph_yaml(const std::string& text, const std::string& file,
                              const std::vector<std::string>& sets = {}, const LoadLimits& limits = {});

}  // namespace a2a
