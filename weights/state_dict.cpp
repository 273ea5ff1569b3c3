#include "weights/state_dict.h"

#include <torch/torch.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.h"
#include "weights/safetensors.h"

namespace a2a {

namespace {
std::string shape_str(at::IntArrayRef sizes) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < sizes.size(); ++i) os << (i ? "," : "") << sizes[i];
  os << "]";
  return os.str();
}

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  for (const auto& p : patterns)
    if (key_matches(p, name)) return true;
  return false;
}

at::Device parse_device(const std::string& device, const std::string& source) {
  std::optional<at::Device> parsed;
  try {
    parsed = at::Device(device);
  } catch (const c10::Error&) {
    throw_input_error("bad_device", source + ": '" + device + "' is not a device (cpu, cuda, cuda:N)");
  }
  if (parsed->is_cuda() && !at::hasCUDA()) {
    throw_input_error("bad_device", source + ": device '" + device + "' asked for, but this build has no CUDA");
  }
  return *parsed;
}

void insert_unique(TensorMap& out, const std::string& name, const at::Tensor& tensor, const std::string& from) {
  if (!out.emplace(name, tensor).second) {
    throw_input_error("weights_conversion",
                      "converting key '" + from + "' gives '" + name + "', which another key already became");
  }
}
}  // namespace

bool key_matches(const std::string& pattern, const std::string& name) {
  // Iterative glob matching with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const std::vector<std::string>& known_harmless_unexpected_keys() {
  static const std::vector<std::string> keys = {
      "*embeddings.position_ids",    // CLIP, BERT, RoBERTa: stored by transformers before 4.31
      "*embeddings.token_type_ids",  // RoBERTa / CLAP: a zero buffer
      "*.rotary_emb.inv_freq",       // Llama: stored by transformers before 4.31
      "*.attn.masked_bias",          // GPT-2: a constant
  };
  return keys;
}

const std::vector<std::string>& known_harmless_missing_keys() {
  static const std::vector<std::string> keys = {
      "*embeddings.position_ids",
      "*embeddings.token_type_ids",
      "*.rotary_emb.inv_freq",
  };
  return keys;
}

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
  if (shared) os << " (" << shared << " used in place)";
  list("missing from the checkpoint", missing);
  list("unexpected in the checkpoint", unexpected);
  list("shape mismatch", mismatched);
  list("ignored (known harmless)", ignored);
  list("absent but not needed", ignored_missing);
  return os.str();
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& given, const LoadOptions& options) {
  const std::string source = options.source.empty() ? std::string("checkpoint") : options.source;
  TensorMap converted;
  if (options.convert) converted = options.convert(given);
  const TensorMap& tensors = options.convert ? converted : given;

  LoadReport report;
  TensorMap targets = module_state(module);
  for (const auto& kv : tensors) {
    if (targets.count(kv.first)) continue;
    if (matches_any(options.ignored_unexpected, kv.first) ||
        (options.ignore_known_harmless && matches_any(known_harmless_unexpected_keys(), kv.first))) {
      report.ignored.push_back(kv.first);
    } else {
      report.unexpected.push_back(kv.first);
    }
  }
  for (const auto& kv : targets) {
    auto it = tensors.find(kv.first);
    if (it == tensors.end()) {
      if (matches_any(options.ignored_missing, kv.first) ||
          (options.ignore_known_harmless && matches_any(known_harmless_missing_keys(), kv.first))) {
        report.ignored_missing.push_back(kv.first);
      } else {
        report.missing.push_back(kv.first);
      }
      continue;
    }
    if (!it->second.defined()) {
      report.mismatched.push_back(kv.first + ": checkpoint tensor is undefined");
    } else if (it->second.sizes() != kv.second.sizes()) {
      report.mismatched.push_back(kv.first + ": checkpoint " + shape_str(it->second.sizes()) + " vs module " +
                                  shape_str(kv.second.sizes()));
    }
  }
  if (options.strict && !report.ok()) {
    throw Error(ErrorKind::Input, "weights_mismatch", source + " does not match the model: " + report.summary());
  }
  if (options.dtype && !at::isFloatingType(*options.dtype)) {
    throw_input_error("bad_dtype", source + ": the load dtype must be a floating-point type, not " +
                                       std::string(c10::toString(*options.dtype)));
  }
  const at::Device device = parse_device(options.device, source);

  torch::NoGradGuard no_grad;
  for (auto& kv : targets) {
    auto it = tensors.find(kv.first);
    if (it == tensors.end() || !it->second.defined() || it->second.sizes() != kv.second.sizes()) continue;
    const at::Tensor& from = it->second;
    at::Tensor& target = kv.second;
    at::ScalarType dtype = target.scalar_type();
    if (at::isFloatingType(dtype) && options.dtype) dtype = *options.dtype;
    if (options.zero_copy && device.is_cpu() && from.device().is_cpu() && from.scalar_type() == dtype) {
      target.set_data(from);
      ++report.shared;
    } else {
      if (target.scalar_type() != dtype || target.device() != device) {
        // Replacing the storage first frees the module's old one: one copy of the weights at a time.
        target.set_data(at::empty(target.sizes(), target.options().dtype(dtype).device(device)));
      }
      target.copy_(from);
      if (options.release_source_pages) {
        release_mapped_pages(from);
      } else {
        page_out_mapped_pages(from);
      }
    }
    ++report.loaded;
  }
  return report;
}

TensorMap convert_keys(const TensorMap& tensors, const std::function<std::string(const std::string&)>& rename) {
  TensorMap out;
  for (const auto& kv : tensors) insert_unique(out, rename(kv.first), kv.second, kv.first);
  return out;
}

TensorMap convert_legacy_vae_attention(const TensorMap& tensors) {
  static const std::regex legacy(R"(^(.*\battentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$)");
  static const std::regex current(R"(^(.*\battentions\.\d+\.)(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$)");
  static const std::map<std::string, std::string> renames = {
      {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};
  TensorMap out;
  for (const auto& kv : tensors) {
    std::smatch m;
    std::string name = kv.first;
    bool attention = false;
    if (std::regex_match(kv.first, m, legacy)) {
      name = m[1].str() + renames.at(m[2].str()) + "." + m[3].str();
      attention = true;
    } else if (std::regex_match(kv.first, m, current)) {
      attention = true;
    }
    at::Tensor tensor = kv.second;
    // A 1x1 convolution kernel [C_out, C_in, 1, 1] is the linear weight [C_out, C_in].
    if (attention && tensor.defined() && tensor.dim() == 4 && tensor.size(2) == 1 && tensor.size(3) == 1 &&
        name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) {
      tensor = tensor.squeeze(3).squeeze(2);
    }
    insert_unique(out, name, tensor, kv.first);
  }
  return out;
}

TensorMap rename_prefixes(const TensorMap& tensors, const std::vector<std::pair<std::string, std::string>>& table) {
  return convert_keys(tensors, [&](const std::string& name) {
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& entry : table) {
      if (name.compare(0, entry.first.size(), entry.first) == 0 && (!best || entry.first.size() > best->first.size())) {
        best = &entry;
      }
    }
    return best ? best->second + name.substr(best->first.size()) : name;
  });
}

}  // namespace a2a
