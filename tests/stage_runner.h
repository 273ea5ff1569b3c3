#pragma once
// Runs one stage outside a graph the way a pipeline does: parameters through the validator's
// parameter pass (checked, defaults filled in), then configure, then run with a RunContext that
// records progress, streamed text and warnings.
#include <memory>
#include <string>
#include <vector>

#include "pipeline/registry.h"
#include "pipeline/stage.h"

namespace a2a::test {

struct ConfiguredStage {
  std::unique_ptr<Stage> stage;
  Json params;  // as validated: defaults filled in
};

// Throws ErrorList for parameters the validator rejects, as a2a validate would report them. `dtype` is
// the pipeline's dtype the stage sees in its ConfigureContext.
ConfiguredStage configure_stage(const std::string& type, const Json& params = Json::object(),
                                ModuleCache* modules = nullptr, const std::string& stage_id = "stage",
                                const std::string& dtype = "float32");

struct StageRun {
  PortValues outputs;
  std::string streamed;
  std::vector<std::string> warnings;
  std::vector<int64_t> progress;  // `done` of every progress call
};

StageRun run_stage(Stage& stage, const PortValues& inputs, uint64_t seed = 1, const CancellationToken* cancel = nullptr,
                   const std::string& stage_id = "stage");

}  // namespace a2a::test
