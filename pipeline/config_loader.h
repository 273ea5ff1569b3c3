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

// Reads and converts a YAML file. Syntax errors, unknown keys and malformed entries are collected
// and thrown together as ErrorList. `sets` are "KEY=VALUE" overrides (see apply_override).
GraphBuilder load_graph_yaml(const std::string& path, const std::vector<std::string>& sets = {});

// Same, from text; `file` labels locations and sets the base folder for relative paths.
GraphBuilder parse_graph_yaml(const std::string& text, const std::string& file,
                              const std::vector<std::string>& sets = {});

}  // namespace a2a
