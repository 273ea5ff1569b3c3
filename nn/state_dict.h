#pragma once
// Strict loading of a checkpoint's tensors into a LibTorch module tree named like the checkpoint.
#include <ATen/Tensor.h>

#include <functional>
#include <optional>
#include <map>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace a2a {

using TensorMap = std::map<std::string, at::Tensor>;

struct LoadOptions {
  bool strict = true;
  // Checkpoint keys that may be present without a matching parameter (CLIP's position_ids, ...).
  std::vector<std::string> ignored_unexpected;
  // Module keys that may be absent from the checkpoint (non-persistent buffers, ...).
  std::vector<std::string> ignored_missing;
  // Optional target dtype for floating-point tensors (kFloat by default; the module's own dtype
  // is replaced). Integer buffers keep their dtype.
  std::optional<at::ScalarType> dtype;
  std::string device = "cpu";
  std::string source;  // file or folder name, for messages
};

struct LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::vector<std::string> mismatched;  // "name: checkpoint [a,b] vs module [c,d]"
  std::vector<std::string> ignored;     // unexpected keys on the harmless list
  size_t loaded = 0;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;
};

// Every parameter and persistent buffer of the module, by dotted name.
TensorMap module_state(torch::nn::Module& module);

// Copies tensors into the module's parameters and buffers. In strict mode any missing, unexpected
// or mis-shaped tensor raises a2a::Error (code "weights_mismatch") that lists each by name.
LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& options = {});

// Renames keys through a conversion function (returns the new name, or the same name).
TensorMap convert_keys(const TensorMap& tensors, const std::function<std::string(const std::string&)>& rename);

}  // namespace a2a
