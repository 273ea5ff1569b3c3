// libFuzzer's entry point for one target, named at compile time (A2A_FUZZ_TARGET_NAME).
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_target.h"

namespace {

const a2a::fuzz::Target& this_target() {
  static const a2a::fuzz::Target* target = a2a::fuzz::find_target(A2A_FUZZ_TARGET_NAME);
  if (!target) {
    std::fprintf(stderr, "no fuzz target named %s\n", A2A_FUZZ_TARGET_NAME);
    std::abort();
  }
  return *target;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  this_target();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string problem =
      a2a::fuzz::run_one(this_target(), a2a::fuzz::Bytes(reinterpret_cast<const char*>(data), size));
  if (!problem.empty()) {
    std::fprintf(stderr, "\n%s: %s\n", A2A_FUZZ_TARGET_NAME, problem.c_str());
    std::abort();
  }
  return 0;
}
