#include "pipeline/pipeline.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "pipeline/value_io.h"

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
        std::string hint = closest_match(kv.first, names);
        throw Error(ErrorKind::Input, "unknown_graph_input",
                    "the pipeline has no input named '" + kv.first + "'" +
                        (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
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
};

Pipeline::Pipeline(ValidatedGraph graph) : impl_(std::make_unique<Impl>()) { impl_->graph = std::move(graph); }
Pipeline::Pipeline(const GraphBuilder& builder) : Pipeline(builder.build()) {}
Pipeline::~Pipeline() = default;
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;

RunResult Pipeline::run(const RunRequest& request) { return impl_->run(request); }

RunResult Pipeline::Impl::run(const RunRequest& request) {
  const auto run_start = std::chrono::steady_clock::now();
  const GraphSpec& spec = graph.spec;
  RunResult result;

  // Which outputs, and which stages they need.
  std::vector<const GraphOutput*> wanted;
  if (request.outputs.empty()) {
    for (const auto& o : spec.outputs) wanted.push_back(&o);
  } else {
    for (const auto& name : request.outputs) {
      const GraphOutput* o = spec.output(name);
      if (!o) throw Error(ErrorKind::Input, "unknown_output", "the pipeline has no output named '" + name + "'");
      wanted.push_back(o);
    }
  }
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

  std::map<std::string, Value> inputs = graph_inputs(request);

  // Dependencies among the needed stages, in declaration order.
  std::vector<const StageNode*> nodes;
  std::map<std::string, std::set<std::string>> upstream;
  std::map<std::string, std::vector<std::string>> downstream;
  for (const auto& s : spec.stages) {
    if (!needed.count(s.id)) continue;
    nodes.push_back(&s);
    for (const auto& w : s.inputs) {
      auto ref = parse_source(w.source);
      if (ref && !ref->graph_input && upstream[s.id].insert(ref->node).second) downstream[ref->node].push_back(s.id);
    }
  }

  std::mutex state_mutex;
  std::condition_variable state_changed;
  std::map<std::string, PortValues> produced;
  std::deque<const StageNode*> ready;
  std::map<std::string, size_t> waiting;
  size_t finished = 0;
  std::exception_ptr failure;
  bool failure_is_cancel = false;
  for (const auto* n : nodes) {
    waiting[n->id] = upstream[n->id].size();
    if (waiting[n->id] == 0) ready.push_back(n);
  }

  auto execute = [&](const StageNode& node) -> StageRecord {
    StageRecord record{node.id, node.type, StageRecord::Status::Ran, 0.0, ""};
    cancel.check();
    PortValues stage_inputs;
    std::vector<std::string> absent;
    {
      std::lock_guard<std::mutex> lock(state_mutex);
      for (const auto& w : node.inputs) {
        auto ref = parse_source(w.source);
        if (ref->graph_input) {
          auto it = inputs.find(ref->node);
          if (it != inputs.end()) stage_inputs.emplace(w.port, it->second);
        } else {
          const PortValues& up = produced[ref->node];
          auto it = up.find(ref->port);
          if (it != up.end()) stage_inputs.emplace(w.port, it->second);
        }
      }
    }
    const StagePorts& ports = graph.ports.at(node.id);
    for (const auto& p : ports.inputs) {
      if (p.required && !stage_inputs.count(p.name)) absent.push_back(p.name);
    }
    if (!absent.empty()) {
      record.status = StageRecord::Status::Skipped;
      record.note = "required input '" + absent.front() + "' is absent";
      emit({StageEvent::Kind::Skipped, node.id, node.type, 0.0, 0, 0, record.note});
      return record;
    }

    const uint64_t seed = stage_seed(node.id);
    uint64_t key = mix(1469598103934665603ULL, node.type);
    key = mix(key, node.params.dump());
    key = mix(key, spec.device + "/" + spec.dtype + "/" + std::to_string(seed));
    for (const auto& kv : stage_inputs) {
      key = mix(key, kv.first);
      uint64_t h = kv.second.content_hash();
      key = hash_bytes(&h, sizeof(h), key);
    }

    Stage& stage = configured(node);
    if (stage.cacheable()) {
      if (auto hit = cache->find(key)) {
        record.status = StageRecord::Status::Cached;
        emit({StageEvent::Kind::Cached, node.id, node.type, 0.0, 0, 0, ""});
        std::lock_guard<std::mutex> lock(state_mutex);
        produced[node.id] = std::move(*hit);
        return record;
      }
    }

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
    const auto t0 = std::chrono::steady_clock::now();
    PortValues outputs;
    try {
      outputs = stage.run(stage_inputs, ctx);
    } catch (const std::exception& e) {
      record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      emit({StageEvent::Kind::Failed, node.id, node.type, record.seconds, 0, 0, e.what()});
      throw;
    }
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
    if (stage.cacheable()) cache->store(key, outputs);
    emit({StageEvent::Kind::Finished, node.id, node.type, record.seconds, 0, 0, ""});
    std::lock_guard<std::mutex> lock(state_mutex);
    produced[node.id] = std::move(outputs);
    return record;
  };

  auto complete = [&](const StageNode& node, StageRecord record) {
    std::lock_guard<std::mutex> lock(state_mutex);
    result.stages.push_back(std::move(record));
    ++finished;
    for (const auto& d : downstream[node.id]) {
      if (--waiting[d] == 0) ready.push_back(spec.stage(d));
    }
    state_changed.notify_all();
  };

  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(state_mutex);
    bool is_cancel = false;
    try {
      std::rethrow_exception(e);
    } catch (const Error& err) {
      is_cancel = err.kind() == ErrorKind::Cancelled;
    } catch (...) {
    }
    // A real error wins over the cancellations it caused elsewhere.
    if (!failure || (failure_is_cancel && !is_cancel)) {
      failure = e;
      failure_is_cancel = is_cancel;
    }
    state_changed.notify_all();
  };

  const int workers = std::max(1, std::min<int>(spec.workers, static_cast<int>(nodes.size())));
  if (workers == 1) {
    while (!ready.empty() && !failure) {
      const StageNode* node = ready.front();
      ready.pop_front();
      try {
        complete(*node, execute(*node));
      } catch (...) {
        fail(std::current_exception());
      }
    }
  } else {
    size_t running = 0;
    auto worker = [&] {
      for (;;) {
        const StageNode* node = nullptr;
        {
          std::unique_lock<std::mutex> lock(state_mutex);
          state_changed.wait(lock, [&] { return failure || !ready.empty() || finished == nodes.size() || (ready.empty() && running == 0); });
          if (failure || ready.empty()) return;
          node = ready.front();
          ready.pop_front();
          ++running;
        }
        try {
          complete(*node, execute(*node));
        } catch (...) {
          fail(std::current_exception());
        }
        std::lock_guard<std::mutex> lock(state_mutex);
        --running;
        state_changed.notify_all();
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < workers; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  if (failure) std::rethrow_exception(failure);

  for (const auto* o : wanted) {
    auto ref = parse_source(o->source);
    if (ref->graph_input) {
      auto it = inputs.find(ref->node);
      if (it != inputs.end()) result.outputs.emplace(o->name, it->second);
      continue;
    }
    const PortValues& up = produced[ref->node];
    auto it = up.find(ref->port);
    if (it != up.end()) result.outputs.emplace(o->name, it->second);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return result;
}

void Pipeline::set_param(const std::string& stage_id, const std::string& name, Json value) {
  GraphSpec spec = impl_->graph.spec;
  StageNode* node = spec.stage(stage_id);
  if (!node) throw Error(ErrorKind::Config, "unknown_stage", "the pipeline has no stage '" + stage_id + "'");
  node->params[name] = std::move(value);
  impl_->graph = validate_or_throw(spec);
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
