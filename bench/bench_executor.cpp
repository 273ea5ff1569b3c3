// Executor overhead per stage on a chain of 100 trivial stages.
#include <torch/torch.h>

#include <iomanip>
#include <iostream>

#include "bench/bench.h"
#include "pipeline/pipeline.h"

namespace {

using namespace a2a;

struct PassStage : Stage {
  PortValues run(const PortValues& in, RunContext&) override { return {{"out", input(in, "in")}}; }
};

void bench_executor() {
  if (!StageRegistry::global().find("bench_pass")) {
    StageInfo info;
    info.type = "bench_pass";
    info.description = "passes its input through";
    info.ports.inputs = {in_port("in", ValueType::Tensor)};
    info.ports.outputs = {out_port("out", ValueType::Tensor)};
    info.create = [] { return std::make_unique<PassStage>(); };
    StageRegistry::global().add(info);
  }
  const int kStages = 100;
  GraphBuilder b;
  b.input("x", ValueType::Tensor);
  for (int i = 0; i < kStages; ++i) {
    b.stage("s" + std::to_string(i), "bench_pass")
        .wire("in", i == 0 ? "inputs.x" : "s" + std::to_string(i - 1) + ".out");
  }
  b.output("y", "s" + std::to_string(kStages - 1) + ".out");
  Pipeline pipeline(b);

  int64_t counter = 0;
  auto fresh = [&] {
    RunRequest req;
    req.inputs.emplace("x", Value::tensor(torch::full({4}, static_cast<double>(++counter))));
    pipeline.run(req);
  };
  RunRequest same;
  same.inputs.emplace("x", Value::tensor(torch::zeros({4})));
  auto cached = [&] { pipeline.run(same); };

  double t_fresh = bench::seconds_per_call(fresh, 3, 20, 1.0);
  double t_cached = bench::seconds_per_call(cached, 3, 20, 1.0);
  std::cout << std::fixed << std::setprecision(2);
  std::cout << "chain of " << kStages << " trivial stages\n";
  std::cout << "  executed (cache miss): " << t_fresh * 1e6 / kStages << " us/stage\n";
  std::cout << "  cache hits:            " << t_cached * 1e6 / kStages << " us/stage\n";
  std::cout << "  target:                < 20 us/stage\n";
}

}  // namespace

A2A_BENCH("executor", bench_executor);
