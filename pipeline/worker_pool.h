#pragma once
// Runs the tasks of a DAG: a task starts once every task it depends on has completed; with
// several workers, ready tasks run concurrently.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace a2a {

struct TaskGraph {
  std::vector<std::string> order;                         // every task, in the order ready ones start
  std::map<std::string, std::set<std::string>> upstream;  // task -> the tasks it waits for
};

// Runs `task` for every task of `graph` on up to `workers` threads (1 = on the calling thread, in
// order). The first error stops the scheduling of further tasks and is rethrown once the running
// ones finish; a real error wins over the cancellations it caused elsewhere.
void run_task_graph(const TaskGraph& graph, int workers, const std::function<void(const std::string&)>& task);

}  // namespace a2a
