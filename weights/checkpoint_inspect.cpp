#include "weights/checkpoint_inspect.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "base/path_query.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace a2a {

namespace {

std::string layout_kind_id(LayoutKind kind) {
  switch (kind) {
    case LayoutKind::SafeTensorsFile: return "safetensors_file";
    case LayoutKind::ShardedSafeTensors: return "sharded_safetensors";
    case LayoutKind::TransformersModel: return "transformers_model";
    case LayoutKind::DiffusersModel: return "diffusers_model";
    case LayoutKind::DiffusersPipeline: return "diffusers_pipeline";
    case LayoutKind::Scheduler: return "scheduler";
    case LayoutKind::Tokenizer: return "tokenizer";
    case LayoutKind::Processor: return "processor";
    case LayoutKind::ConfigOnly: return "config_only";
    case LayoutKind::Unknown: break;
  }
  return "unknown";
}

nlohmann::json empty_totals() {
  return {{"tensors", 0}, {"parameters", 0}, {"bytes", 0}, {"dtypes", nlohmann::json::object()}};
}

void add_totals(nlohmann::json& into, const nlohmann::json& from) {
  into["tensors"] = into["tensors"].get<uint64_t>() + from["tensors"].get<uint64_t>();
  into["parameters"] = into["parameters"].get<uint64_t>() + from["parameters"].get<uint64_t>();
  into["bytes"] = into["bytes"].get<uint64_t>() + from["bytes"].get<uint64_t>();
  for (auto it = from["dtypes"].begin(); it != from["dtypes"].end(); ++it) {
    auto& slot = into["dtypes"][it.key()];
    slot = (slot.is_null() ? 0 : slot.get<uint64_t>()) + it.value().get<uint64_t>();
  }
}

nlohmann::json describe_checkpoint(const CheckpointLayout& layout) {
  nlohmann::json entry;
  entry["layout"] = layout_name(layout.kind);
  entry["class"] = layout.class_name;
  entry["config"] = layout.config.empty() ? nlohmann::json() : nlohmann::json(layout.config);
  entry["weights"] = layout.weights.empty() ? nlohmann::json() : nlohmann::json(layout.weights);
  entry["files"] = nlohmann::json::array();
  entry["metadata"] = nlohmann::json::object();
  entry["index_metadata"] = nlohmann::json::object();
  entry["tensors"] = nlohmann::json::array();
  entry["totals"] = empty_totals();
  if (layout.weights.empty()) return entry;

  auto checkpoint = SafeTensorsCheckpoint::open(layout.weights);
  for (const auto& f : checkpoint->files()) entry["files"].push_back(f->path());
  for (const auto& kv : checkpoint->metadata()) entry["metadata"][kv.first] = kv.second;
  for (const auto& kv : checkpoint->index_metadata()) entry["index_metadata"][kv.first] = kv.second;
  auto& totals = entry["totals"];
  uint64_t count = 0, parameters = 0, bytes = 0;
  for (const auto& r : checkpoint->records()) {
    entry["tensors"].push_back({{"name", r.name},
                                {"dtype", r.dtype},
                                {"shape", r.shape},
                                {"parameters", static_cast<uint64_t>(r.numel())},
                                {"bytes", r.bytes()}});
    ++count;
    parameters += static_cast<uint64_t>(r.numel());
    bytes += r.bytes();
    auto& slot = totals["dtypes"][r.dtype];
    slot = (slot.is_null() ? 0 : slot.get<uint64_t>()) + 1;
  }
  totals["tensors"] = count;
  totals["parameters"] = parameters;
  totals["bytes"] = bytes;
  return entry;
}

std::string with_separators(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string shape_text(const nlohmann::json& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i].get<int64_t>());
  return s + "]";
}

std::string totals_text(const nlohmann::json& t) {
  std::string s = with_separators(t["tensors"].get<uint64_t>()) + " tensors, " +
                  with_separators(t["parameters"].get<uint64_t>()) + " parameters, " +
                  with_separators(t["bytes"].get<uint64_t>()) + " bytes (" + human_bytes(t["bytes"].get<uint64_t>()) +
                  ")";
  if (!t["dtypes"].empty()) {
    s += "; dtypes:";
    for (auto it = t["dtypes"].begin(); it != t["dtypes"].end(); ++it) {
      s += " " + it.key() + " " + std::to_string(it.value().get<uint64_t>());
    }
  }
  return s;
}

void write_checkpoint(std::ostringstream& os, const nlohmann::json& c, const std::string& indent) {
  if (c["files"].size() > 1) {
    os << indent << "shards: " << c["files"].size() << "\n";
    for (const auto& f : c["files"]) os << indent << "  " << f.get<std::string>() << "\n";
  }
  for (const char* which : {"metadata", "index_metadata"}) {
    if (c[which].empty()) continue;
    os << indent << (std::string(which) == "metadata" ? "metadata:" : "index metadata:") << "\n";
    for (auto it = c[which].begin(); it != c[which].end(); ++it) {
      os << indent << "  " << it.key() << ": " << it.value().get<std::string>() << "\n";
    }
  }
  size_t name_width = 0, dtype_width = 0;
  for (const auto& t : c["tensors"]) {
    name_width = std::max(name_width, t["name"].get<std::string>().size());
    dtype_width = std::max(dtype_width, t["dtype"].get<std::string>().size());
  }
  name_width = std::min<size_t>(name_width, 96);
  os << indent << "tensors:\n";
  for (const auto& t : c["tensors"]) {
    std::string name = t["name"].get<std::string>();
    std::string dtype = t["dtype"].get<std::string>();
    os << indent << "  " << name << std::string(name.size() < name_width ? name_width - name.size() : 0, ' ') << "  "
       << dtype << std::string(dtype_width - dtype.size(), ' ') << "  " << shape_text(t["shape"]) << "\n";
  }
  os << indent << "totals: " << totals_text(c["totals"]) << "\n";
}

}  // namespace

nlohmann::json inspect_checkpoint_json(const std::string& path, const std::string& variant) {
  CheckpointLayout layout = detect_layout(path, variant);
  nlohmann::json out;
  out["path"] = path;
  out["layout"] = layout_name(layout.kind);
  out["layout_kind"] = layout_kind_id(layout.kind);
  out["class"] = layout.class_name;
  out["variant"] = variant;
  out["checkpoints"] = nlohmann::json::array();
  out["totals"] = empty_totals();

  if (layout.kind == LayoutKind::DiffusersPipeline) {
    out["pipeline"] = {{"class", layout.pipeline->class_name},
                       {"diffusers_version", layout.pipeline->diffusers_version},
                       {"options", layout.pipeline->options}};
    for (const auto& [component, sub] : layout.components) {
      nlohmann::json entry = describe_checkpoint(sub);
      entry["component"] = component.name;
      entry["library"] = component.library;
      entry["class"] = component.class_name;
      if (component.class_name.empty())
        entry["layout"] = "absent (null in model_index.json)";
      else if (sub.kind == LayoutKind::Unknown) {
        entry["layout"] = is_folder(sub.path) ? "unrecognised folder" : "absent (no folder)";
      }
      add_totals(out["totals"], entry["totals"]);
      out["checkpoints"].push_back(std::move(entry));
    }
    return out;
  }
  if (layout.kind == LayoutKind::Unknown) {
    throw_input_error("unknown_layout", path +
                                            ": no checkpoint found (expected a .safetensors file, a "
                                            "*.safetensors.index.json, a model folder with config.json, or a "
                                            "pipeline folder with model_index.json)");
  }
  nlohmann::json entry = describe_checkpoint(layout);
  entry["component"] = "";
  add_totals(out["totals"], entry["totals"]);
  out["checkpoints"].push_back(std::move(entry));
  return out;
}

std::string inspect_checkpoint(const std::string& path, const std::string& variant) {
  const nlohmann::json j = inspect_checkpoint_json(path, variant);
  std::ostringstream os;
  os << "path: " << j["path"].get<std::string>() << "\n";
  os << "layout: " << j["layout"].get<std::string>();
  if (!j["class"].get<std::string>().empty()) os << " (" << j["class"].get<std::string>() << ")";
  os << "\n";
  if (!variant.empty()) os << "variant: " << variant << "\n";

  if (j.contains("pipeline")) {
    const auto& pipeline = j["pipeline"];
    if (!pipeline["diffusers_version"].get<std::string>().empty()) {
      os << "diffusers version: " << pipeline["diffusers_version"].get<std::string>() << "\n";
    }
    os << "components:\n";
    auto what_of = [](const nlohmann::json& c) {
      return c["class"].get<std::string>().empty()
                 ? std::string("-")
                 : c["library"].get<std::string>() + " " + c["class"].get<std::string>();
    };
    size_t width = 0, what_width = 0;
    for (const auto& c : j["checkpoints"]) {
      width = std::max(width, c["component"].get<std::string>().size());
      what_width = std::max(what_width, what_of(c).size());
    }
    for (const auto& c : j["checkpoints"]) {
      const std::string name = c["component"].get<std::string>();
      const std::string what = what_of(c);
      os << "  " << name << std::string(width - name.size(), ' ') << "  " << what
         << std::string(what_width - what.size(), ' ') << "  [" << c["layout"].get<std::string>();
      if (c["weights"].is_string()) {
        os << ", " << c["totals"]["tensors"].get<uint64_t>() << " tensors, "
           << human_bytes(c["totals"]["bytes"].get<uint64_t>());
      } else if (c["layout"] == layout_name(LayoutKind::DiffusersModel) ||
                 c["layout"] == layout_name(LayoutKind::TransformersModel)) {
        os << ", no weights";
      }
      os << "]\n";
    }
    for (const auto& c : j["checkpoints"]) {
      if (!c["weights"].is_string()) continue;
      os << "\n== " << c["component"].get<std::string>() << ": " << c["weights"].get<std::string>() << "\n";
      write_checkpoint(os, c, "");
    }
    os << "\ntotal over all components: " << totals_text(j["totals"]) << "\n";
    return os.str();
  }

  const auto& c = j["checkpoints"][0];
  if (c["weights"].is_string() && c["weights"].get<std::string>() != j["path"].get<std::string>()) {
    os << "weights: " << c["weights"].get<std::string>() << "\n";
  }
  if (c["config"].is_string()) os << "config: " << c["config"].get<std::string>() << "\n";
  if (!c["weights"].is_string()) {
    os << "no weights\n";
    return os.str();
  }
  write_checkpoint(os, c, "");
  return os.str();
}

}  // namespace a2a
