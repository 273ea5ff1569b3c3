#include "pipeline/pipeline.h"

#include "base/suggest.h"

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "pipeline/execution_plan.h"
#include "pipeline/value_io.h"
#include "pipeline/worker_pool.h"

namespace a2a {

const char* event_kind_name(StageEvent::Kind kind) {
  switch (kind) {
    case StageEvent::Kind::Started: return "started";
    case StageEvent::Kind::Progress: return "progress";
    case StageEvent::Kind::Finished: return "finished";
    case StageEvent::Kind::Skipped: return "skipped";
    case StageEvent::Kind::Cached: return "cached";
    case StageEvent::Kind::Failed: return "failed";
    case StageEvent::Kind::Warning: return "warning";
    case StageEvent::Kind::Stream: return "stream";
  }
  return "?";
}

const char* stage_status_name(StageRecord::Status status) {
  switch (status) {
    case StageRecord::Status::Ran: return "ran";
    case StageRecord::Status::Cached: return "cached";
    case StageRecord::Status::Skipped: return "skipped";
  }
  return "?";
}

const StageRecord* RunResult::record(const std::string& stage_id) const {
  for (const auto& r : stages)
    if (r.id == stage_id) return &r;
  return nullptr;
}

namespace {

struct StageSlot {
  std::unique_ptr<Stage> instance;
  std::string configured_params;  // the params the instance was configured with
  std::mutex mutex;               // configure once, even with several workers
};

uint64_t mix(uint64_t h, const std::string& s) { return hash_bytes(s.data(), s.size(), h); }

// The values of one run: graph inputs, what each stage produced, and the stage records.
class RunState {
 public:
  explicit RunState(std::map<std::string, Value> inputs) : inputs_(std::move(inputs)) {}

  // The value a source ("inputs.NAME" or "STAGE.PORT") holds now, if any.
  std::optional<Value> lookup(const std::string& source) {
    auto ref = parse_source(source);
    std::lock_guard<std::mutex> lock(mutex_);
    if (ref->graph_input) {
      auto it = inputs_.find(ref->node);
      if (it == inputs_.end()) return std::nullopt;
      return it->second;
    }
    const PortValues& up = produced_[ref->node];
    auto it = up.find(ref->port);
    if (it == up.end()) return std::nullopt;
    return it->second;
  }

  PortValues gather(const StageNode& node) {
    PortValues values;
    for (const auto& w : node.inputs)
      if (auto v = lookup(w.source)) values.emplace(w.port, std::move(*v));
    return values;
  }

  void finish(const std::string& stage_id, PortValues outputs, StageRecord record) {
    std::lock_guard<std::mutex> lock(mutex_);
    produced_[stage_id] = std::move(outputs);
    records_.push_back(std::move(record));
  }

  std::vector<StageRecord> take_records() { return std::move(records_); }

 private:
  std::mutex mutex_;
  std::map<std::string, Value> inputs_;
  std::map<std::string, PortValues> produced_;
  std::vector<StageRecord> records_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

struct Pipeline::Impl {
  ValidatedGraph graph;
  std::map<std::string, std::unique_ptr<StageSlot>> slots;
  std::shared_ptr<ExecutionCache> cache = std::make_shared<ExecutionCache>();
  std::shared_ptr<ModuleCache> modules = std::make_shared<ModuleCache>();
  CancellationToken cancel;
  EventSink sink;
  std::mutex sink_mutex;

  void emit(const StageEvent& e) {
    if (!sink) return;
    std::lock_guard<std::mutex> lock(sink_mutex);
    sink(e);
  }

  uint64_t stage_seed(const std::string& id) const { return mix(graph.spec.seed * 0x9E3779B97F4A7C15ULL + 1, id); }

  StageSlot& slot(const std::string& id) {
    auto& s = slots[id];
    if (!s) s = std::make_unique<StageSlot>();
    return *s;
  }

  Stage& configured(const StageNode& node) {
    StageSlot& s = slot(node.id);
    std::lock_guard<std::mutex> lock(s.mutex);
    std::string params = node.params.dump();
    if (!s.instance || s.configured_params != params) {
      const StageInfo* info = graph.infos.at(node.id);
      auto instance = info->create();
      ConfigureContext ctx;
      ctx.stage_id = node.id;
      ctx.device = graph.spec.device;
      ctx.dtype = graph.spec.dtype;
      ctx.base_dir = graph.spec.base_dir;
      ctx.modules = modules.get();
      instance->configure(node.params, ctx);
      s.instance = std::move(instance);
      s.configured_params = params;
    }
    return *s.instance;
  }

  std::map<std::string, Value> graph_inputs(const RunRequest& request) const {
    std::map<std::string, Value> values;
    for (const auto& kv : request.inputs) {
      const GraphInput* decl = graph.spec.input(kv.first);
      if (!decl) {
        std::vector<std::string> names;
        for (const auto& i : graph.spec.inputs) names.push_back(i.name);
        throw Error(ErrorKind::Input, "unknown_graph_input",
                    "the pipeline has no input named '" + kv.first + "'" + did_you_mean(kv.first, names));
      }
      if (kv.second.type() != decl->type) {
        throw Error(ErrorKind::Input, "input_type_mismatch",
                    "graph input '" + kv.first + "' takes " + value_type_name(decl->type) + ", got " +
                        value_type_name(kv.second.type()));
      }
      values.emplace(kv.first, kv.second);
    }
    for (const auto& decl : graph.spec.inputs) {
      if (values.count(decl.name) || !decl.default_value || decl.default_value->is_null()) continue;
      const Json& d = *decl.default_value;
      std::string text = d.is_string() ? d.get<std::string>() : d.dump();
      if (decl.type == ValueType::Text) {
        values.emplace(decl.name, Value::text(text));
      } else {
        std::filesystem::path p(text);
        if (p.is_relative() && !graph.spec.base_dir.empty()) p = std::filesystem::path(graph.spec.base_dir) / p;
        values.emplace(decl.name, load_value_file(p.string(), decl.type));
      }
    }
    return values;
  }

  RunResult run(const RunRequest& request);
  void execute(const StageNode& node, RunState& state);
  std::optional<std::string> first_absent_input(const StageNode& node, const PortValues& inputs) const;
  uint64_t cache_key(const StageNode& node, const PortValues& inputs, uint64_t seed) const;
  PortValues run_stage(const StageNode& node, Stage& stage, const PortValues& inputs, uint64_t seed,
                       StageRecord& record);
  void check_outputs(const StageNode& node, const PortValues& outputs) const;
};

Pipeline::Pipeline(ValidatedGraph graph) : impl_(std::make_unique<Impl>()) {
  impl_->graph = std::move(graph);
  impl_->cache->set_budget(static_cast<size_t>(impl_->graph.spec.cache_mb) << 20);
}
Pipeline::Pipeline(const GraphBuilder& builder) : Pipeline(builder.build()) {}
Pipeline::~Pipeline() = default;
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;

RunResult Pipeline::run(const RunRequest& request) { return impl_->run(request); }

RunResult Pipeline::Impl::run(const RunRequest& request) {
  const auto run_start = std::chrono::steady_clock::now();
  const ExecutionPlan plan = plan_execution(graph.spec, request.outputs);
  RunState state(graph_inputs(request));
  run_task_graph(plan.stages, graph.spec.workers,
                 [&](const std::string& id) { execute(*graph.spec.stage(id), state); });
  RunResult result;
  result.stages = state.take_records();
  for (const auto* o : plan.outputs)
    if (auto v = state.lookup(o->source)) result.outputs.emplace(o->name, std::move(*v));
  result.seconds = seconds_since(run_start);
  return result;
}

// One stage: its inputs, then skipped (a required input is absent), cached, or run and checked.
void Pipeline::Impl::execute(const StageNode& node, RunState& state) {
  cancel.check();
  StageRecord record{node.id, node.type, StageRecord::Status::Ran, 0.0, ""};
  PortValues inputs = state.gather(node);
  if (auto absent = first_absent_input(node, inputs)) {
    record.status = StageRecord::Status::Skipped;
    record.note = "required input '" + *absent + "' is absent";
    emit({StageEvent::Kind::Skipped, node.id, node.type, 0.0, 0, 0, record.note});
    state.finish(node.id, {}, std::move(record));
    return;
  }
  const uint64_t seed = stage_seed(node.id);
  const uint64_t key = cache_key(node, inputs, seed);
  Stage& stage = configured(node);
  if (stage.cacheable()) {
    if (auto hit = cache->find(key)) {
      record.status = StageRecord::Status::Cached;
      emit({StageEvent::Kind::Cached, node.id, node.type, 0.0, 0, 0, ""});
      state.finish(node.id, std::move(*hit), std::move(record));
      return;
    }
  }
  PortValues outputs = run_stage(node, stage, inputs, seed, record);
  check_outputs(node, outputs);
  if (stage.cacheable()) cache->store(key, outputs);
  emit({StageEvent::Kind::Finished, node.id, node.type, record.seconds, 0, 0, ""});
  state.finish(node.id, std::move(outputs), std::move(record));
}

std::optional<std::string> Pipeline::Impl::first_absent_input(const StageNode& node, const PortValues& inputs) const {
  for (const auto& p : graph.ports.at(node.id).inputs)
    if (p.required && !inputs.count(p.name)) return p.name;
  return std::nullopt;
}

// Type, parameters, device, dtype and seed, then each input's name and content hash.
uint64_t Pipeline::Impl::cache_key(const StageNode& node, const PortValues& inputs, uint64_t seed) const {
  uint64_t key = mix(1469598103934665603ULL, node.type);
  key = mix(key, node.params.dump());
  key = mix(key, graph.spec.device + "/" + graph.spec.dtype + "/" + std::to_string(seed));
  for (const auto& kv : inputs) {
    key = mix(key, kv.first);
    uint64_t h = kv.second.content_hash();
    key = hash_bytes(&h, sizeof(h), key);
  }
  return key;
}

PortValues Pipeline::Impl::run_stage(const StageNode& node, Stage& stage, const PortValues& inputs, uint64_t seed,
                                     StageRecord& record) {
  emit({StageEvent::Kind::Started, node.id, node.type, 0.0, 0, 0, ""});
  RunContext ctx;
  ctx.stage_id = node.id;
  ctx.seed = seed;
  ctx.cancel = &cancel;
  ctx.progress = [&](int64_t done, int64_t total, const std::string& what) {
    emit({StageEvent::Kind::Progress, node.id, node.type, 0.0, done, total, what});
  };
  ctx.stream = [&](const std::string& text) { emit({StageEvent::Kind::Stream, node.id, node.type, 0.0, 0, 0, text}); };
  ctx.warn = [&](const std::string& text) { emit({StageEvent::Kind::Warning, node.id, node.type, 0.0, 0, 0, text}); };
  const auto start = std::chrono::steady_clock::now();
  try {
    PortValues outputs = stage.run(inputs, ctx);
    record.seconds = seconds_since(start);
    return outputs;
  } catch (const std::exception& e) {
    record.seconds = seconds_since(start);
    emit({StageEvent::Kind::Failed, node.id, node.type, record.seconds, 0, 0, e.what()});
    throw;
  }
}

void Pipeline::Impl::check_outputs(const StageNode& node, const PortValues& outputs) const {
  const StagePorts& ports = graph.ports.at(node.id);
  for (const auto& kv : outputs) {
    const PortSpec* decl = ports.output(kv.first);
    if (!decl) {
      throw Error(ErrorKind::Internal, "undeclared_output",
                  "stage '" + node.id + "' (" + node.type + ") produced undeclared output '" + kv.first + "'");
    }
    if (kv.second.type() != decl->type && decl->type != ValueType::Tensor) {
      throw Error(ErrorKind::Internal, "output_type_mismatch",
                  "stage '" + node.id + "' output '" + kv.first + "' should be " + value_type_name(decl->type) +
                      " but is " + value_type_name(kv.second.type()));
    }
  }
}

void Pipeline::set_param(const std::string& stage_id, const std::string& name, Json value) {
  GraphSpec spec = impl_->graph.spec;
  StageNode* node = spec.stage(stage_id);
  if (!node) throw Error(ErrorKind::Config, "unknown_stage", "the pipeline has no stage '" + stage_id + "'");
  node->params[name] = std::move(value);
  const StageRegistry* registry = impl_->graph.registry;
  impl_->graph = validate_or_throw(spec, registry ? *registry : StageRegistry::global());
}

Stage& Pipeline::stage(const std::string& stage_id) {
  const StageNode* node = impl_->graph.spec.stage(stage_id);
  if (!node) throw Error(ErrorKind::Config, "unknown_stage", "the pipeline has no stage '" + stage_id + "'");
  return impl_->configured(*node);
}

void Pipeline::set_event_sink(EventSink sink) { impl_->sink = std::move(sink); }
CancellationToken& Pipeline::cancellation() { return impl_->cancel; }
const ValidatedGraph& Pipeline::graph() const { return impl_->graph; }
ExecutionCache& Pipeline::cache() { return *impl_->cache; }
ModuleCache& Pipeline::modules() { return *impl_->modules; }

void Pipeline::share_caches_with(Pipeline& other) {
  impl_->cache = other.impl_->cache;
  impl_->modules = other.impl_->modules;
}

}  // namespace a2a
