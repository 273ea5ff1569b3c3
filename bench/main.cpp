#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <vector>

#include "base/error.h"
#include "bench/bench.h"
#include "pipeline/runtime.h"

namespace a2a::bench {

static std::map<std::string, std::function<void()>>& benches() {
  static std::map<std::string, std::function<void()>> all;
  return all;
}

void register_bench(const std::string& name, std::function<void()> fn) { benches()[name] = std::move(fn); }

double seconds_per_call(const std::function<void()>& fn, int warmup, int min_iters, double min_seconds) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(times.size()) < min_iters ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < min_seconds) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double gemm_seconds(int64_t n, double min_seconds) {
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  return seconds_per_call([&] { at::mm(a, b); }, 1, 3, min_seconds);
}

GemmYardstick GemmYardstick::measure(int64_t n, double min_seconds) {
  GemmYardstick y;
  y.n = n;
  y.gflops = 2.0 * n * n * n / gemm_seconds(n, min_seconds) / 1e9;
  return y;
}

void GemmYardstick::report_step(double seconds, double flops) const {
  const double rate = flops / seconds / 1e9;
  std::printf("  step %.3f s, %.1f GFLOP analytic, %.1f GFLOP/s = %.0f %% of the %lld^3 GEMM's %.1f GFLOP/s\n", seconds,
              flops / 1e9, rate, 100 * rate / gflops, static_cast<long long>(n), gflops);
}

}  // namespace a2a::bench

int main(int argc, char** argv) {
  try {
    a2a::initialize_runtime({});
  } catch (const a2a::Error& e) {
    std::cerr << e.formatted() << "\n";
    return 3;
  }
  std::vector<std::string> wanted(argv + 1, argv + argc);
  auto& all = a2a::bench::benches();
  if (!wanted.empty() && (wanted[0] == "--list" || wanted[0] == "-l")) {
    for (const auto& kv : all) std::cout << kv.first << "\n";
    return 0;
  }
  for (const auto& name : wanted) {
    if (!all.count(name)) {
      std::cerr << "unknown benchmark '" << name << "' (try --list)\n";
      return 2;
    }
  }
  for (const auto& kv : all) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), kv.first) == wanted.end()) continue;
    std::cout << "== " << kv.first << " ==\n";
    kv.second();
    std::cout << "\n";
  }
  return 0;
}
