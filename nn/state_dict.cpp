#include "nn/state_dict.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "pipeline/error.h"

namespace a2a {

namespace {
std::string shape_str(at::IntArrayRef sizes) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < sizes.size(); ++i) os << (i ? "," : "") << sizes[i];
  os << "]";
  return os.str();
}
bool contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}
}  // namespace

TensorMap module_state(torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

std::string LoadReport::summary() const {
  std::ostringstream os;
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << "\n  " << what << " (" << names.size() << "):";
    for (const auto& n : names) os << "\n    " << n;
  };
  os << loaded << " tensors loaded";
  list("missing from the checkpoint", missing);
  list("unexpected in the checkpoint", unexpected);
  list("shape mismatch", mismatched);
  list("ignored (known harmless)", ignored);
  return os.str();
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& options) {
  LoadReport report;
  TensorMap targets = module_state(module);
  for (const auto& kv : tensors) {
    if (!targets.count(kv.first)) {
      if (contains(options.ignored_unexpected, kv.first)) {
        report.ignored.push_back(kv.first);
      } else {
        report.unexpected.push_back(kv.first);
      }
    }
  }
  for (const auto& kv : targets) {
    auto it = tensors.find(kv.first);
    if (it == tensors.end()) {
      if (!contains(options.ignored_missing, kv.first)) report.missing.push_back(kv.first);
      continue;
    }
    if (it->second.sizes() != kv.second.sizes()) {
      report.mismatched.push_back(kv.first + ": checkpoint " + shape_str(it->second.sizes()) + " vs module " +
                                  shape_str(kv.second.sizes()));
    }
  }
  if (options.strict && !report.ok()) {
    throw Error(ErrorKind::Input, "weights_mismatch",
                (options.source.empty() ? std::string("checkpoint") : options.source) +
                    " does not match the model: " + report.summary());
  }
  torch::NoGradGuard no_grad;
  at::Device device(options.device);
  for (auto& kv : targets) {
    auto it = tensors.find(kv.first);
    if (it == tensors.end() || it->second.sizes() != kv.second.sizes()) continue;
    at::Tensor& target = kv.second;
    at::ScalarType dtype = target.scalar_type();
    if (at::isFloatingType(dtype) && options.dtype) dtype = *options.dtype;
    if (target.scalar_type() != dtype || target.device() != device) {
      target.set_data(torch::empty(target.sizes(), target.options().dtype(dtype).device(device)));
    }
    target.copy_(it->second);
    ++report.loaded;
  }
  return report;
}

TensorMap convert_keys(const TensorMap& tensors, const std::function<std::string(const std::string&)>& rename) {
  TensorMap out;
  for (const auto& kv : tensors) out[rename(kv.first)] = kv.second;
  return out;
}

}  // namespace a2a
