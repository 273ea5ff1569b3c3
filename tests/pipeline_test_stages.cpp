#include "pipeline_test_stages.h"

#include <torch/torch.h>

#include <chrono>
#include <thread>

#include "base/error.h"
#include "pipeline/registry.h"

namespace a2a::test {

namespace {
std::mutex g_mutex;
std::map<std::string, int> g_runs;

void count(const std::string& id) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ++g_runs[id];
}

struct SourceStage : Stage {
  double value = 0;
  int64_t size = 1;
  void configure(const Json& p, const ConfigureContext&) override {
    value = param_float(p, "value");
    size = param_int(p, "size");
  }
  PortValues run(const PortValues&, RunContext& ctx) override {
    count(ctx.stage_id);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.seed);
    return {{"out", Value::tensor(torch::full({size}, value) + 0 * at::randn({size}, gen))},
            {"noise", Value::tensor(at::randn({size}, gen))}};
  }
};

struct AddStage : Stage {
  double offset = 0;
  void configure(const Json& p, const ConfigureContext&) override { offset = param_float(p, "offset"); }
  PortValues run(const PortValues& in, RunContext& ctx) override {
    count(ctx.stage_id);
    auto out = input(in, "a").tensor() + offset;
    if (const Value* b = optional_input(in, "b")) out = out + b->tensor();
    return {{"out", Value::tensor(out)}};
  }
};

// Passes its input through only when `open` is true: the absent-value path.
struct GateStage : Stage {
  bool open = true;
  void configure(const Json& p, const ConfigureContext&) override { open = param_bool(p, "open"); }
  PortValues run(const PortValues& in, RunContext& ctx) override {
    count(ctx.stage_id);
    if (!open) return {};
    return {{"out", input(in, "in")}};
  }
};

// Runs `steps` steps of `step_ms`, checking cancellation inside the loop.
struct SlowStage : Stage {
  int64_t steps = 10, step_ms = 1;
  void configure(const Json& p, const ConfigureContext&) override {
    steps = param_int(p, "steps");
    step_ms = param_int(p, "step_ms");
  }
  PortValues run(const PortValues& in, RunContext& ctx) override {
    count(ctx.stage_id);
    for (int64_t i = 0; i < steps; ++i) {
      ctx.check_cancelled();
      std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
      ctx.report_progress(i + 1, steps, "step");
    }
    return {{"out", input(in, "in")}};
  }
};

struct TextStage : Stage {
  PortValues run(const PortValues& in, RunContext& ctx) override {
    count(ctx.stage_id);
    return {{"text", Value::text("<" + input(in, "text").text() + ">")}};
  }
};

struct ImageSinkStage : Stage {
  PortValues run(const PortValues& in, RunContext& ctx) override {
    count(ctx.stage_id);
    return {{"out", Value::tensor(input(in, "image").tensor().mean().view({1}))}};
  }
};

// Fails at run time, after configure succeeded: the executor's failure path.
struct FailingStage : Stage {
  PortValues run(const PortValues&, RunContext& ctx) override {
    count(ctx.stage_id);
    throw Error(ErrorKind::Input, "t_failed", "stage '" + ctx.stage_id + "' fails on purpose");
  }
};

template <class T>
StageInfo make_info(const std::string& type, std::vector<PortSpec> ins, std::vector<PortSpec> outs,
                    std::vector<ParamSpec> params) {
  StageInfo info;
  info.type = type;
  info.description = "test stage";
  info.ports.inputs = std::move(ins);
  info.ports.outputs = std::move(outs);
  info.params = std::move(params);
  info.create = [] { return std::make_unique<T>(); };
  return info;
}
}  // namespace

void register_test_stages() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& r = StageRegistry::global();
    r.add(make_info<SourceStage>("t_source", {},
                                 {out_port("out", ValueType::Tensor), out_port("noise", ValueType::Tensor)},
                                 {ranged_param("value", ParamType::Float, 1.0, -100.0, 100.0),
                                  ranged_param("size", ParamType::Int, 4, 1, 1000000)}));
    r.add(make_info<AddStage>("t_add", {in_port("a", ValueType::Tensor), optional_in_port("b", ValueType::Tensor)},
                              {out_port("out", ValueType::Tensor)}, {param_spec("offset", ParamType::Float, 0.0)}));
    r.add(make_info<GateStage>("t_gate", {in_port("in", ValueType::Tensor)}, {out_port("out", ValueType::Tensor)},
                               {param_spec("open", ParamType::Bool, true)}));
    r.add(make_info<SlowStage>(
        "t_slow", {in_port("in", ValueType::Tensor)}, {out_port("out", ValueType::Tensor)},
        {ranged_param("steps", ParamType::Int, 10, 1, 100000), ranged_param("step_ms", ParamType::Int, 1, 0, 10000)}));
    r.add(make_info<TextStage>("t_text", {in_port("text", ValueType::Text)}, {out_port("text", ValueType::Text)}, {}));
    r.add(make_info<ImageSinkStage>("t_image_sink", {in_port("image", ValueType::Image)},
                                    {out_port("out", ValueType::Tensor)}, {}));
    r.add(make_info<FailingStage>("t_fail", {in_port("in", ValueType::Tensor)}, {out_port("out", ValueType::Tensor)},
                                  {}));
  });
}

int run_count(const std::string& stage_id) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_runs.find(stage_id);
  return it == g_runs.end() ? 0 : it->second;
}

void reset_run_counts() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_runs.clear();
}

}  // namespace a2a::test
