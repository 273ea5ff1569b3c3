#include "pipeline/execution_plan.h"

#include <set>

#include "base/error.h"

namespace a2a {

namespace {

std::vector<const GraphOutput*> wanted_outputs(const GraphSpec& spec, const std::vector<std::string>& requested) {
  std::vector<const GraphOutput*> wanted;
  if (requested.empty()) {
    for (const auto& o : spec.outputs) wanted.push_back(&o);
    return wanted;
  }
  for (const auto& name : requested) {
    const GraphOutput* o = spec.output(name);
    if (!o) throw Error(ErrorKind::Input, "unknown_output", "the pipeline has no output named '" + name + "'");
    wanted.push_back(o);
  }
  return wanted;
}

std::set<std::string> needed_stages(const GraphSpec& spec, const std::vector<const GraphOutput*>& wanted) {
  std::set<std::string> needed;
  std::vector<std::string> frontier;
  for (const auto* o : wanted) {
    auto ref = parse_source(o->source);
    if (ref && !ref->graph_input) frontier.push_back(ref->node);
  }
  while (!frontier.empty()) {
    std::string id = frontier.back();
    frontier.pop_back();
    if (!needed.insert(id).second) continue;
    for (const auto& w : spec.stage(id)->inputs) {
      auto ref = parse_source(w.source);
      if (ref && !ref->graph_input) frontier.push_back(ref->node);
    }
  }
  return needed;
}

}  // namespace

ExecutionPlan plan_execution(const GraphSpec& spec, const std::vector<std::string>& requested_outputs) {
  ExecutionPlan plan;
  plan.outputs = wanted_outputs(spec, requested_outputs);
  const std::set<std::string> needed = needed_stages(spec, plan.outputs);
  for (const auto& s : spec.stages) {
    if (!needed.count(s.id)) continue;
    plan.stages.order.push_back(s.id);
    auto& upstream = plan.stages.upstream[s.id];
    for (const auto& w : s.inputs) {
      auto ref = parse_source(w.source);
      if (ref && !ref->graph_input) upstream.insert(ref->node);
    }
  }
  return plan;
}

}  // namespace a2a
