#include "pipeline/input_arg.h"

#include "base/error.h"
#include "base/suggest.h"

namespace a2a {

InputArg parse_input_arg(const std::string& arg, const GraphSpec& spec) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(ErrorKind::Usage, "bad_input_arg", "--input needs NAME=VALUE, got '" + arg + "'");
  const std::string name = arg.substr(0, eq);
  InputArg out;
  out.input = spec.input(name);
  if (!out.input) {
    std::vector<std::string> names;
    for (const auto& i : spec.inputs) names.push_back(i.name);
    throw Error(ErrorKind::Input, "unknown_graph_input",
                "the pipeline has no input named '" + name + "'" + did_you_mean(name, names));
  }
  out.value = arg.substr(eq + 1);
  return out;
}

}  // namespace a2a
