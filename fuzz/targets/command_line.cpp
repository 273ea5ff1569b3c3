// `--set KEY=VALUE` overrides over a config, and `--input NAME=VALUE` against its inputs.
#include "fuzz/fake_stages.h"
#include "fuzz/fuzz_target.h"
#include "pipeline/config_loader.h"
#include "pipeline/input_arg.h"

namespace a2a::fuzz {

namespace {

// One argument per line: "set KEY=VALUE" or "input NAME=VALUE"; other lines are --set arguments.
void command_line(const Bytes& input) {
  std::vector<std::string> sets, inputs;
  size_t pos = 0;
  while (pos <= input.size() && sets.size() + inputs.size() < 64) {
    size_t end = input.find('\n', pos);
    if (end == Bytes::npos) end = input.size();
    std::string line = input.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    if (line.rfind("input ", 0) == 0)
      inputs.push_back(line.substr(6));
    else
      sets.push_back(line.rfind("set ", 0) == 0 ? line.substr(4) : line);
  }
  GraphBuilder builder = parse_graph_yaml(fake_stage_configs().front(), "fuzz.yaml", sets);
  ValidatedGraph graph = builder.build(fake_stage_registry());
  for (const auto& arg : inputs) {
    try {
      InputArg parsed = parse_input_arg(arg, graph.spec);
      fuzz_check(parsed.input && arg.compare(0, parsed.input->name.size(), parsed.input->name) == 0,
                 "--input named another graph input");
    } catch (const Error&) {
    }
  }
}

std::vector<std::pair<std::string, Bytes>> command_line_seeds() {
  return {{"seed.txt", "seed=7\nset stages.t.params.steps=10\ninput prompt=a dog\n"},
          {"lists.txt", "stages.t.params.sizes=[1, 2]\nstages.t.params.mode=c\nworkers=2\n"},
          {"bad.txt", "seed=abc\nbogus=1\nstages.t.params.steps.x.y=1\nstages.t.params=5\ninput nobody=x\ninput =x\n"},
          {"nan.txt", "stages.t.params.scale=-nan\nstages.t.params.scale=+inf\noutputs.picture.save=../x.png\n"}};
}

}  // namespace

A2A_FUZZ_TARGET("command_line",
                "`--set KEY=VALUE` overrides applied to a config and validated, and "
                "`--input NAME=VALUE` parsing against the graph's inputs",
                command_line, command_line_seeds);

}  // namespace a2a::fuzz
