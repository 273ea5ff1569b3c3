#include "pipeline/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>
#include <thread>

#include "base/error.h"

namespace a2a {

namespace {
bool process_has_symbol(const char* name) { return ::dlsym(RTLD_DEFAULT, name) != nullptr; }
}  // namespace

void check_blas(const std::function<bool(const char*)>& lookup) {
  if (lookup("openblas_get_config")) return;
  throw Error(ErrorKind::Internal, "slow_blas",
              "LibTorch is using the reference BLAS, about 40x slower than OpenBLAS. Fix: "
              "`sudo apt-get install libopenblas0-pthread` (or run scripts/setup.sh), then check that "
              "`update-alternatives --display libblas.so.3-x86_64-linux-gnu` points at openblas-pthread. "
              "Set A2A_ALLOW_SLOW_BLAS=1 to run anyway.");
}

std::string blas_name() {
  using GetConfig = char* (*)();
  if (auto fn = reinterpret_cast<GetConfig>(::dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    return std::string("OpenBLAS ") + fn();
  }
  return "reference BLAS";
}

int set_compute_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  return at::get_num_threads();
}

void initialize_runtime(const RuntimeOptions& options) {
  if (options.require_openblas) {
    const char* allow = std::getenv("A2A_ALLOW_SLOW_BLAS");
    if (!(allow && std::string(allow) == "1")) check_blas(process_has_symbol);
  }
  set_compute_threads(options.threads);
}

}  // namespace a2a
