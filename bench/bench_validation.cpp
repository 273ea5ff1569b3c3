// Validation time per stage on chains of growing length: it should stay flat (linear growth), since
// every lookup by stage id goes through an index.
#include <iomanip>
#include <iostream>

#include "bench/bench.h"
#include "pipeline/builder.h"

namespace {

using namespace a2a;

GraphBuilder text_chain(int stages) {
  GraphBuilder b;
  b.input("x", ValueType::Text);
  for (int i = 0; i < stages; ++i) {
    b.stage("s" + std::to_string(i), "text_template")
        .param("template", "{text}")
        .wire("text", i == 0 ? "inputs.x" : "s" + std::to_string(i - 1) + ".text");
  }
  b.output("y", "s" + std::to_string(stages - 1) + ".text");
  return b;
}

void bench_validation() {
  std::cout << std::fixed << std::setprecision(2);
  double first = 0.0;
  for (int stages : {1000, 4000, 10000}) {
    const GraphBuilder chain = text_chain(stages);
    const double seconds = bench::seconds_per_call([&] { chain.build(); }, 1, 3, 0.5);
    const double per_stage = seconds * 1e6 / stages;
    if (first == 0.0) first = per_stage;
    std::cout << "validate a chain of " << stages << " stages: " << per_stage << " us/stage, " << per_stage / first
              << "x the per-stage time of 1000 (1.0 = linear)\n";
  }
}

}  // namespace

A2A_BENCH("validation", bench_validation);
