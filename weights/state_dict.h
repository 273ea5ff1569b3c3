#pragma once
// Strict loading of a checkpoint's tensors into a LibTorch module tree named like the checkpoint,
// and the small conversion functions for alternative key layouts.
#include <ATen/Tensor.h>

#include <functional>
#include <map>
#include <optional>
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
  // Exact names, or patterns where '*' matches any run of characters ("*.position_ids").
  std::vector<std::string> ignored_unexpected;
  // Module keys that may be absent from the checkpoint (non-persistent buffers, ...). Same syntax.
  std::vector<std::string> ignored_missing;
  // Also ignore the known-harmless keys (known_harmless_unexpected_keys / _missing_keys).
  bool ignore_known_harmless = true;
  // Optional target dtype for floating-point tensors (the module's own dtype is replaced).
  // Integer and bool buffers keep their dtype.
  std::optional<at::ScalarType> dtype;
  std::string device = "cpu";
  std::string source;  // file or folder name, for messages
  // Applied to the checkpoint's tensors before matching, e.g. convert_legacy_vae_attention.
  std::function<TensorMap(const TensorMap&)> convert;
  // When a checkpoint tensor already has the target dtype and the device is the CPU, the module
  // shares it instead of copying it: a mapped safetensors view is then used in place (zero-copy;
  // the module keeps the mapping alive, and in-place writes stay private to the process).
  bool zero_copy = false;
  // After copying a mapped safetensors view, its pages leave memory so that the load never holds
  // two resident copies. By default they are paged out, which keeps any write made to the view;
  // with this set they are discarded, which is cheaper and exact for views nobody wrote to
  // (load_weights, which makes its own views, sets it).
  bool release_source_pages = false;
};

struct LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::vector<std::string> mismatched;       // "name: checkpoint [a,b] vs module [c,d]"
  std::vector<std::string> ignored;          // unexpected keys on the harmless or ignored list
  std::vector<std::string> ignored_missing;  // absent module keys on the harmless or ignored list
  size_t loaded = 0;
  size_t shared = 0;  // of `loaded`, tensors used in place (zero_copy)
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;
};

// Every parameter and persistent buffer of the module, by dotted name.
TensorMap module_state(torch::nn::Module& module);

// Copies tensors into the module's parameters and buffers, converting dtype and device on the
// way (no intermediate copy). In strict mode any missing, unexpected or mis-shaped tensor raises
// a2a::Error (code "weights_mismatch") that lists each by name.
LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& options = {});

// Renames keys through a conversion function (returns the new name, or the same name). Two keys
// that end up with the same name raise "weights_conversion".
TensorMap convert_keys(const TensorMap& tensors, const std::function<std::string(const std::string&)>& rename);

// Keys that real checkpoints carry and models rightly lack: buffers that newer library versions
// compute instead of storing (CLIP's embeddings.position_ids, rotary inv_freq, GPT-2's
// attn.masked_bias). Patterns as in LoadOptions.
const std::vector<std::string>& known_harmless_unexpected_keys();
// Buffers a model computes at construction that a checkpoint may lack (position_ids, inv_freq).
const std::vector<std::string>& known_harmless_missing_keys();
// Whether `name` matches `pattern` ('*' matches any run of characters, including dots).
bool key_matches(const std::string& pattern, const std::string& name);

// Old diffusers VAE checkpoints name the attention of the mid block `query`, `key`, `value`,
// `proj_attn`, and checkpoints converted from the original Stable Diffusion keep their 1x1
// convolution weights [C,C,1,1]. Renames them to `to_q`, `to_k`, `to_v`, `to_out.0` and squeezes
// such weights to [C,C]; every other key passes through. Only keys under an `attentions.N.` scope
// are touched, so a transformer's `attention.self.key` is left alone.
TensorMap convert_legacy_vae_attention(const TensorMap& tensors);

// Renames by longest matching prefix: {"model.diffusion_model.", ""} strips a wrapper's prefix.
TensorMap rename_prefixes(const TensorMap& tensors, const std::vector<std::pair<std::string, std::string>>& table);

}  // namespace a2a
