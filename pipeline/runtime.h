#pragma once
// Process-wide start-up: intra-op threads and the BLAS check.
#include <functional>
#include <string>

namespace a2a {

struct RuntimeOptions {
  int threads = 0;  // 0 = the number of cores
  bool require_openblas = true;
};

// Sets LibTorch's intra-op threads and refuses (a2a::Error, code "slow_blas") to go on when the
// BLAS in use is not OpenBLAS. Safe to call more than once.
void initialize_runtime(const RuntimeOptions& options);

// Sets the intra-op thread count (0 = the number of cores). Returns the count in effect.
int set_compute_threads(int threads);

// Name of the BLAS the process resolved ("OpenBLAS ..." or "reference BLAS").
std::string blas_name();

// The check itself, with the symbol lookup injectable for tests: lookup(name) returns whether a
// symbol is defined in the process. Throws a2a::Error("slow_blas") naming the fix.
void check_blas(const std::function<bool(const char*)>& lookup);

}  // namespace a2a
