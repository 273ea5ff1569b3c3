#pragma once
// The pipeline description: graph inputs, stages with their wiring, and outputs. Built by
// GraphBuilder, from C++ or from YAML; checked by validate_graph().
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "pipeline/value.h"

namespace a2a {

using Json = nlohmann::json;

struct GraphInput {
  std::string name;
  ValueType type = ValueType::Text;
  std::optional<Json> default_value;  // text, or a media path for image/audio/video inputs
  SourceLocation where;
};

// One wired input port: `port` is fed from `source`, written "inputs.NAME" or "STAGE.PORT".
struct Wire {
  std::string port;
  std::string source;
  SourceLocation where;
};

struct StageNode {
  std::string id;
  std::string type;
  Json params = Json::object();
  std::map<std::string, SourceLocation> param_where;
  std::vector<Wire> inputs;
  SourceLocation where;       // the stage entry
  SourceLocation type_where;  // its `type:` value
};

struct GraphOutput {
  std::string name;
  std::string source;  // "STAGE.PORT" or "inputs.NAME"
  std::string save;    // relative to the output directory; empty = not saved
  SourceLocation where;
};

struct GraphSpec {
  int version = 1;
  std::string name;
  std::string device = "cpu";
  std::string dtype = "float32";
  uint64_t seed = 0;
  int threads = 0;          // 0 = all cores
  int workers = 1;          // stages run concurrently when > 1
  int64_t cache_mb = 1024;  // the execution cache's budget in MiB; 0 keeps nothing
  std::vector<std::string> plugins;
  std::vector<GraphInput> inputs;
  std::vector<StageNode> stages;
  std::vector<GraphOutput> outputs;
  std::map<std::string, SourceLocation> setting_where;  // top-level key -> where its value was written
  std::string file;                                     // the YAML file, when loaded from one
  std::string base_dir;  // relative paths resolve against it

  const StageNode* stage(const std::string& id) const;
  StageNode* stage(const std::string& id);
  const GraphInput* input(const std::string& name) const;
  const GraphOutput* output(const std::string& name) const;

  // A canonical JSON form without source locations: two specs that describe the same graph
  // compare equal whichever way they were built.
  Json canonical() const;
};

// "inputs.prompt" -> {"inputs", "prompt"}; "encode.embedding" -> {"encode", "embedding"}.
struct SourceRef {
  bool graph_input = false;
  std::string node;  // stage id, or graph input name
  std::string port;  // empty for graph inputs
};
std::optional<SourceRef> parse_source(const std::string& source);

}  // namespace a2a
