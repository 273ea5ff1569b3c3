// Peak resident memory while loading weights into a module, against the weights' own size.
// The load path maps the file, copies tensor by tensor, and releases each tensor's mapped pages
// after its copy: the peak should stay near one copy (target <= 1.2x). A plain copy from views that
// stay resident (two copies) is measured beside it, and the zero-copy path for comparison.
#include <malloc.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/bench.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace {

constexpr int kLayers = 50;
constexpr int64_t kRows = 1024, kCols = 1024;  // 50 x 4 MiB = 200 MiB in float32

struct BenchNetImpl : torch::nn::Module {
  BenchNetImpl() {
    for (int i = 0; i < kLayers; ++i) {
      // Zero-initialised, as a constructed model's weights are resident before the load.
      register_parameter("layer_" + std::to_string(i), torch::zeros({kRows, kCols}));
    }
  }
};
TORCH_MODULE(BenchNet);

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) == 0) return std::stol(line.substr(prefix.size()));
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where the kernel refuses.
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

struct Measure {
  double peak_mib = 0;   // peak RSS above the baseline
  double after_mib = 0;  // RSS above the baseline once loaded
  double seconds = 0;
};

template <typename Fn>
Measure measure(Fn&& fn) {
  malloc_trim(0);
  const long baseline = status_kib("VmRSS");
  reset_peak();
  auto t0 = std::chrono::steady_clock::now();
  long after = 0;
  fn(after);
  Measure m;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.peak_mib = (status_kib("VmHWM") - baseline) / 1024.0;
  m.after_mib = (after - baseline) / 1024.0;
  return m;
}

void report(const char* what, const Measure& m, double weights_mib) {
  std::printf("  %-44s peak %7.1f MiB (%.2fx)  resident after %7.1f MiB  %.2f s\n", what, m.peak_mib,
              m.peak_mib / weights_mib, m.after_mib, m.seconds);
}

}  // namespace

void bench_weights() {
  // Fixed threshold: large tensors come from mmap and go back to the system when freed, so each
  // phase starts from the same baseline.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("a2a_bench_weights_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string f32_path = (dir / "model.safetensors").string();
  const std::string f16_path = (dir / "model.fp16.safetensors").string();
  {
    at::manual_seed(0);
    std::map<std::string, at::Tensor> f32, f16;
    for (int i = 0; i < kLayers; ++i) {
      const std::string name = "layer_" + std::to_string(i);
      f32[name] = at::randn({kRows, kCols});
      f16[name] = f32[name].to(at::kHalf);
    }
    a2a::save_safetensors(f32_path, f32, {{"format", "pt"}});
    a2a::save_safetensors(f16_path, f16, {{"format", "pt"}});
  }
  const double weights_mib = kLayers * kRows * kCols * 4 / (1024.0 * 1024.0);
  if (!reset_peak()) std::printf("  (cannot reset VmHWM: peaks include earlier phases)\n");
  std::printf("  weights: %d tensors, %.1f MiB float32 (file %s)\n", kLayers, weights_mib, f32_path.c_str());

  report("load_weights (copy, pages released)", measure([&](long& after) {
           BenchNet net;
           a2a::load_weights(*net, f32_path);
           after = status_kib("VmRSS");
         }),
         weights_mib);
  report("load_weights F16 file -> F32 module", measure([&](long& after) {
           BenchNet net;
           a2a::load_weights(*net, f16_path);
           after = status_kib("VmRSS");
         }),
         weights_mib);
  report("load_safetensors map + load_state_dict", measure([&](long& after) {
           BenchNet net;
           auto tensors = a2a::load_safetensors(f32_path);
           a2a::load_state_dict(*net, tensors);
           after = status_kib("VmRSS");
         }),
         weights_mib);
  report("baseline: copy_ from views kept mapped", measure([&](long& after) {
           BenchNet net;
           auto tensors = a2a::load_safetensors(f32_path);
           torch::NoGradGuard no_grad;
           for (auto& p : net->named_parameters()) p.value().copy_(tensors.at(p.key()));
           after = status_kib("VmRSS");
         }),
         weights_mib);
  double checksum = 0;
  report("load_weights zero_copy (views in place)", measure([&](long& after) {
           BenchNet net;
           a2a::LoadOptions options;
           options.zero_copy = true;
           a2a::load_weights(*net, f32_path, options);
           after = status_kib("VmRSS");
           // Touching the weights pages them in from the file, once.
           for (const auto& p : net->parameters()) checksum += p.sum().item<double>();
         }),
         weights_mib);
  std::printf("  (zero-copy: weights are paged in from the file on first use; checksum %.3f)\n", checksum);
  std::printf("  target: peak <= 1.20x the weights for load_weights\n");

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

A2A_BENCH("weights", bench_weights);
