#include <ATen/Parallel.h>

#include "base/error.h"
#include "pipeline/runtime.h"
#include "test_support.h"

using namespace a2a;

TEST_CASE("the BLAS check refuses the reference BLAS and names the fix", "[runtime]") {
  auto reference_only = [](const char*) { return false; };
  try {
    check_blas(reference_only);
    FAIL("check_blas accepted a process without OpenBLAS");
  } catch (const Error& e) {
    CHECK(e.code() == "slow_blas");
    CHECK(e.message().find("libopenblas0-pthread") != std::string::npos);
  }
  auto openblas = [](const char* name) { return std::string(name) == "openblas_get_config"; };
  CHECK_NOTHROW(check_blas(openblas));
}

TEST_CASE("this process runs on OpenBLAS", "[runtime]") { CHECK(blas_name().rfind("OpenBLAS", 0) == 0); }

TEST_CASE("intra-op threads follow the setting", "[runtime]") {
  int before = at::get_num_threads();
  CHECK(set_compute_threads(1) == 1);
  CHECK(set_compute_threads(0) >= 1);
  set_compute_threads(before);
}
