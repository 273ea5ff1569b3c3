#pragma once
// Benchmarks register a named function; `a2a_bench [name...]` runs them (all by default).
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace a2a::bench {

void register_bench(const std::string& name, std::function<void()> fn);

// Seconds per call: runs fn `warmup` times, then repeats until `min_seconds` have passed
// (at least `min_iters` times) and returns the median of the timed calls.
double seconds_per_call(const std::function<void()>& fn, int warmup = 1, int min_iters = 3, double min_seconds = 0.5);
// Seconds of one n x n by n x n fp32 GEMM, the yardstick the benchmarks report their times against.
double gemm_seconds(int64_t n, double min_seconds = 0.5);

// That GEMM's rate, measured once in a run, and a model step's analytic rate reported against it.
struct GemmYardstick {
  int64_t n = 2048;
  double gflops = 0.0;  // 2·n^3 / seconds
  static GemmYardstick measure(int64_t n = 2048, double min_seconds = 1.0);
  // Prints "  step S s, F GFLOP analytic, R GFLOP/s = P % of the n^3 GEMM's G GFLOP/s".
  void report_step(double seconds, double flops) const;
};

struct BenchRegistrar {
  BenchRegistrar(const std::string& name, std::function<void()> fn) { register_bench(name, std::move(fn)); }
};

}  // namespace a2a::bench

#define A2A_BENCH_CONCAT_INNER(a, b) a##b
#define A2A_BENCH_CONCAT(a, b) A2A_BENCH_CONCAT_INNER(a, b)
#define A2A_BENCH(name, fn) static ::a2a::bench::BenchRegistrar A2A_BENCH_CONCAT(a2a_bench_, __COUNTER__)(name, fn)
