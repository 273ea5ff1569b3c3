#include "stage_runner.h"

#include "pipeline/validation.h"
#include "test_support.h"

namespace a2a::test {

ConfiguredStage configure_stage(const std::string& type, const Json& params, ModuleCache* modules,
                                const std::string& stage_id, const std::string& dtype) {
  const StageInfo* info = StageRegistry::global().find(type);
  REQUIRE(info != nullptr);
  Json validated;
  try {
    validated = validate_stage_params(*info, stage_id, params);
  } catch (const ErrorList& list) {
    // One problem reads as that error, as a stage's own configure-time error would.
    if (list.errors().size() == 1) throw list.errors().front();
    throw;
  }
  ConfiguredStage out{info->create(), validated};
  ConfigureContext ctx;
  ctx.stage_id = stage_id;
  ctx.modules = modules;
  ctx.dtype = dtype;
  out.stage->configure(out.params, ctx);
  return out;
}

StageRun run_stage(Stage& stage, const PortValues& inputs, uint64_t seed, const CancellationToken* cancel,
                   const std::string& stage_id) {
  StageRun out;
  RunContext ctx;
  ctx.stage_id = stage_id;
  ctx.seed = seed;
  ctx.cancel = cancel;
  ctx.progress = [&](int64_t done, int64_t, const std::string&) { out.progress.push_back(done); };
  ctx.stream = [&](const std::string& text) { out.streamed += text; };
  ctx.warn = [&](const std::string& message) { out.warnings.push_back(message); };
  out.outputs = stage.run(inputs, ctx);
  return out;
}

}  // namespace a2a::test
