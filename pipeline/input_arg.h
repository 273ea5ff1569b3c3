#pragma once
// `--input NAME=VALUE` as `a2a run` takes it: the graph input it names and the text or media path.
#include <string>

#include "pipeline/graph.h"

namespace a2a {

struct InputArg {
  const GraphInput* input = nullptr;  // the graph's declaration
  std::string value;                  // text for a Text input, else a path to read
};

// Throws a2a::Error: Usage ("bad_input_arg") without NAME=, Input ("unknown_graph_input", with the
// closest name) for a name the graph does not declare.
InputArg parse_input_arg(const std::string& arg, const GraphSpec& spec);

}  // namespace a2a
