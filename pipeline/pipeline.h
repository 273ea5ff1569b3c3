#pragma once
// A validated graph ready to run: stage instances, the execution cache and the executor.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/builder.h"
#include "pipeline/events.h"
#include "pipeline/execution_cache.h"
#include "pipeline/stage.h"

namespace a2a {

struct RunRequest {
  std::map<std::string, Value> inputs;  // graph inputs; others take their defaults
  std::vector<std::string> outputs;     // requested output names; empty = every output
};

struct StageRecord {
  enum class Status { Ran, Cached, Skipped };
  std::string id;
  std::string type;
  Status status = Status::Ran;
  double seconds = 0.0;
  std::string note;  // why it was skipped
};
const char* stage_status_name(StageRecord::Status status);

struct RunResult {
  std::map<std::string, Value> outputs;  // absent outputs are not in the map
  std::vector<StageRecord> stages;       // in completion order; only the stages the outputs needed
  double seconds = 0.0;
  const StageRecord* record(const std::string& stage_id) const;
};

class Pipeline {
 public:
  explicit Pipeline(ValidatedGraph graph);
  Pipeline(const GraphBuilder& builder);  // NOLINT: a builder converts by validating
  ~Pipeline();
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;

  RunResult run(const RunRequest& request = {});

  // Changes one parameter and re-validates; the stage is rebuilt on the next run, other stages
  // keep their instances and cached outputs.
  void set_param(const std::string& stage_id, const std::string& name, Json value);

  // The configured stage (configured now if it has not run yet), for research code.
  Stage& stage(const std::string& stage_id);

  void set_event_sink(EventSink sink);
  CancellationToken& cancellation();
  const ValidatedGraph& graph() const;
  ExecutionCache& cache();
  ModuleCache& modules();
  // Shares the execution cache and loaded modules with another pipeline (for example the same
  // config with one parameter changed).
  void share_caches_with(Pipeline& other);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2a
