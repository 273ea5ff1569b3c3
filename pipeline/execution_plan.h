#pragma once
// What one run needs: the requested outputs and the stages they depend on, in declaration order.
#include <string>
#include <vector>

#include "pipeline/graph.h"
#include "pipeline/worker_pool.h"

namespace a2a {

struct ExecutionPlan {
  std::vector<const GraphOutput*> outputs;  // requested, or every output
  TaskGraph stages;                         // only the stages the outputs need (a backward walk)
};

// Throws a2a::Error (Input, "unknown_output") for an output name the graph does not declare.
ExecutionPlan plan_execution(const GraphSpec& spec, const std::vector<std::string>& requested_outputs);

}  // namespace a2a
