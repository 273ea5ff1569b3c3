#include "weights/hf_layout.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "base/error.h"
#include "base/path_query.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace a2a {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// `_add_variant` of diffusers and transformers: the variant goes before the last extension,
// "diffusion_pytorch_model.safetensors" -> "diffusion_pytorch_model.fp16.safetensors",
// "model.safetensors.index.json" -> "model.safetensors.index.fp16.json".
std::string with_variant(const std::string& name, const std::string& variant) {
  if (variant.empty()) return name;
  auto dot = name.rfind('.');
  return name.substr(0, dot) + "." + variant + name.substr(dot);
}

const char* const kWeightNames[] = {
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "model.safetensors",
    "model.safetensors.index.json",
};

const char* const kPickleWeightNames[] = {"diffusion_pytorch_model.bin", "pytorch_model.bin",
                                          "diffusion_pytorch_model.bin.index.json", "pytorch_model.bin.index.json"};

// The variants present for a weights base name: "diffusion_pytorch_model.fp16.safetensors" -> fp16.
std::vector<std::string> variants_present(const fs::path& folder) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    for (const char* base : {"diffusion_pytorch_model.", "model."}) {
      const std::string prefix = base;
      if (name.compare(0, prefix.size(), prefix) != 0 || !ends_with(name, ".safetensors")) continue;
      std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - std::string(".safetensors").size());
      if (!middle.empty() && middle.find('.') == std::string::npos && middle.find('-') == std::string::npos) {
        found.push_back(middle);
      }
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

std::string class_name_of(const nlohmann::json& config) {
  for (const char* key : {"_class_name", "image_processor_type", "feature_extractor_type"}) {
    auto it = config.find(key);
    if (it != config.end() && it->is_string()) return it->get<std::string>();
  }
  auto it = config.find("architectures");
  if (it != config.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) return (*it)[0].get<std::string>();
  return "";
}

bool has_tokenizer_files(const fs::path& folder) {
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "merges.txt"})
    if (is_file(folder / name)) return true;
  return false;
}

}  // namespace

std::string layout_name(LayoutKind kind) {
  switch (kind) {
    case LayoutKind::SafeTensorsFile: return "safetensors file";
    case LayoutKind::ShardedSafeTensors: return "sharded safetensors (index)";
    case LayoutKind::TransformersModel: return "transformers model folder";
    case LayoutKind::DiffusersModel: return "diffusers model folder";
    case LayoutKind::DiffusersPipeline: return "diffusers pipeline folder";
    case LayoutKind::Scheduler: return "scheduler folder";
    case LayoutKind::Tokenizer: return "tokenizer folder";
    case LayoutKind::Processor: return "processor folder";
    case LayoutKind::ConfigOnly: return "configuration folder";
    case LayoutKind::Unknown: break;
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Pickle refusal

bool is_pickle_checkpoint(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  if (ext == ".ckpt" || ext == ".pt" || ext == ".pth" || ext == ".pkl" || ext == ".pickle") return true;
  if (ext != ".bin") return false;
  const std::string name = fs::path(path).filename().string();
  if (name.find("pytorch_model") != std::string::npos) return true;
  // torch.save writes a zip archive (torch >= 1.6) or a bare pickle (protocol 2+ starts with 0x80).
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(magic), 4);
  if (in.gcount() < 2) return false;
  const bool zip = magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
  const bool pickle = magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5;
  return zip || pickle;
}

std::string pickle_conversion_hint(const std::string& path) {
  const fs::path p(path);
  std::string stem = p.stem().string();
  // Name the output so that the folder layout is found afterwards.
  if (stem == "pytorch_model") stem = "model";
  const std::string target = (p.parent_path() / (stem + ".safetensors")).string();
  return path +
         " is a pickle checkpoint. Unpickling can run arbitrary code, so it is never loaded. Convert it to "
         "safetensors once, in Python:\n\n"
         "    import torch\n"
         "    from safetensors.torch import save_file\n"
         "    state = torch.load(\"" +
         path +
         "\", map_location=\"cpu\", weights_only=True)\n"
         "    state = state.get(\"state_dict\", state)  # Lightning .ckpt files wrap the weights\n"
         "    save_file({k: v.detach().clone().contiguous() for k, v in state.items()\n"
         "               if isinstance(v, torch.Tensor)}, \"" +
         target +
         "\")\n\n"
         "For a whole diffusers or transformers folder: "
         "Model.from_pretrained(folder).save_pretrained(folder, safe_serialization=True).";
}

void refuse_pickle_checkpoint(const std::string& path) {
  throw_input_error("pickle_checkpoint", pickle_conversion_hint(path));
}

// ---------------------------------------------------------------------------------------------
// Weights files

std::optional<std::string> find_weights_file_if_present(const std::string& folder, const std::string& variant) {
  const fs::path dir(folder);
  for (const char* base : kWeightNames) {
    fs::path candidate = dir / with_variant(base, variant);
    if (is_file(candidate)) return candidate.string();
  }
  return std::nullopt;
}

std::string find_weights_file(const std::string& path, const std::string& variant) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_input_error("missing_weights", path + ": no such file or folder");
  if (!fs::is_directory(path, ec)) {
    if (is_pickle_checkpoint(path)) refuse_pickle_checkpoint(path);
    return path;
  }
  if (auto found = find_weights_file_if_present(path, variant)) return *found;
  const fs::path dir(path);
  for (const char* base : kPickleWeightNames) {
    fs::path candidate = dir / with_variant(base, variant);
    if (is_file(candidate)) refuse_pickle_checkpoint(candidate.string());
  }
  std::string looked_for;
  for (const char* base : kWeightNames) looked_for += (looked_for.empty() ? "" : ", ") + with_variant(base, variant);
  std::string message = path + ": no weights found (looked for " + looked_for + ")";
  std::vector<std::string> variants = variants_present(dir);
  if (!variants.empty()) {
    std::string list;
    for (const auto& v : variants) list += (list.empty() ? "" : ", ") + v;
    message += variant.empty() ? "; the folder has the variant(s) " + list + ": ask for one of them"
                               : "; the variants present are: " + list;
  } else if (!variant.empty() && find_weights_file_if_present(path, "")) {
    message += "; the folder has weights without a variant: ask for no variant";
  }
  throw_input_error("missing_weights", message);
}

LoadReport load_weights(torch::nn::Module& module, const std::string& path, LoadOptions options,
                        const std::string& variant) {
  const std::string file = find_weights_file(path, variant);
  auto checkpoint = SafeTensorsCheckpoint::open(file);
  if (options.source.empty()) options.source = file;
  // The views below are ours alone: their pages can go as soon as each is copied.
  options.release_source_pages = true;
  return load_state_dict(module, checkpoint->tensors(), options);
}

// ---------------------------------------------------------------------------------------------
// Configuration files

const PipelineComponent* PipelineIndex::find(const std::string& name) const {
  for (const auto& c : components)
    if (c.name == name) return &c;
  return nullptr;
}

PipelineIndex read_model_index(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / "model_index.json").string();
  nlohmann::json j = read_config_json(file);
  PipelineIndex index;
  index.path = file;
  index.options = nlohmann::json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "_class_name" || key == "_diffusers_version") {
      if (!v.is_string())
        throw_input_error("bad_config", file + ": '" + key + "' must be a string, not " + describe_json(v));
      (key == "_class_name" ? index.class_name : index.diffusers_version) = v.get<std::string>();
    } else if (key[0] != '_' && v.is_array()) {
      if (v.size() != 2 || !(v[0].is_string() || v[0].is_null()) || !(v[1].is_string() || v[1].is_null())) {
        throw_input_error("bad_config", file + ": component '" + key + "' must be [library, class], not " + v.dump());
      }
      PipelineComponent c;
      c.name = key;
      if (v[0].is_string()) c.library = v[0].get<std::string>();
      if (v[1].is_string()) c.class_name = v[1].get<std::string>();
      index.components.push_back(std::move(c));
    } else {
      index.options[key] = v;
    }
  }
  if (index.class_name.empty()) throw_input_error("bad_config", file + ": no '_class_name' naming the pipeline");
  return index;
}

// ---------------------------------------------------------------------------------------------
// Layout detection

CheckpointLayout detect_layout(const std::string& path, const std::string& variant) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_input_error("missing_checkpoint", path + ": no such file or folder");
  CheckpointLayout layout;
  layout.path = path;
  layout.variant = variant;
  const fs::path p(path);

  if (!fs::is_directory(p, ec)) {
    const std::string name = p.filename().string();
    if (is_pickle_checkpoint(path)) refuse_pickle_checkpoint(path);
    if (name == "model_index.json" || name == "config.json") {
      return detect_layout(p.parent_path().empty() ? std::string(".") : p.parent_path().string(), variant);
    }
    // "model.safetensors.index.json", or with a variant "model.safetensors.index.fp16.json".
    if (ends_with(name, ".json") && name.find(".safetensors.index.") != std::string::npos) {
      layout.kind = LayoutKind::ShardedSafeTensors;
      layout.weights = path;
      return layout;
    }
    if (ends_with(lower(name), ".json")) {
      throw_input_error("unknown_layout", path +
                                              ": a JSON file that is not a checkpoint (expected model_index.json, "
                                              "config.json or a *.safetensors.index.json)");
    }
    // Anything else is read as safetensors: a file that is not gets that file's own error.
    layout.kind = LayoutKind::SafeTensorsFile;
    layout.weights = path;
    return layout;
  }

  if (is_file(p / "model_index.json")) {
    layout.kind = LayoutKind::DiffusersPipeline;
    layout.config = (p / "model_index.json").string();
    layout.pipeline = read_model_index(layout.config);
    layout.class_name = layout.pipeline->class_name;
    for (const auto& component : layout.pipeline->components) {
      CheckpointLayout sub;
      sub.path = (p / component.name).string();
      sub.variant = variant;
      if (!component.class_name.empty() && fs::is_directory(sub.path, ec)) sub = detect_layout(sub.path, variant);
      layout.components.emplace_back(component, std::move(sub));
    }
    return layout;
  }
  if (is_file(p / "scheduler_config.json")) {
    layout.kind = LayoutKind::Scheduler;
    layout.config = (p / "scheduler_config.json").string();
    layout.class_name = class_name_of(read_config_json(layout.config));
    return layout;
  }
  const bool has_config = is_file(p / "config.json");
  std::optional<std::string> weights = find_weights_file_if_present(path, variant);
  if (has_config || weights) {
    nlohmann::json config = has_config ? read_config_json((p / "config.json").string()) : nlohmann::json::object();
    if (has_config) layout.config = (p / "config.json").string();
    layout.class_name = class_name_of(config);
    if (!weights) {
      // Explain a missing variant or refuse pickle weights; a folder with a config alone is fine.
      for (const char* base : kPickleWeightNames)
        if (is_file(p / with_variant(base, variant)))
          refuse_pickle_checkpoint((p / with_variant(base, variant)).string());
      if (!variant.empty() || !variants_present(p).empty()) find_weights_file(path, variant);
    }
    if (weights) layout.weights = *weights;
    const std::string weights_name = weights ? fs::path(*weights).filename().string() : "";
    if (weights_name.compare(0, 23, "diffusion_pytorch_model") == 0 || config.contains("_diffusers_version")) {
      layout.kind = LayoutKind::DiffusersModel;
    } else if (!weights_name.empty() || config.contains("transformers_version") || config.contains("architectures") ||
               config.contains("model_type")) {
      layout.kind = LayoutKind::TransformersModel;
    } else {
      layout.kind = LayoutKind::ConfigOnly;
    }
    return layout;
  }
  if (is_file(p / "preprocessor_config.json")) {
    layout.kind = LayoutKind::Processor;
    layout.config = (p / "preprocessor_config.json").string();
    layout.class_name = class_name_of(read_config_json(layout.config));
    return layout;
  }
  if (has_tokenizer_files(p)) {
    layout.kind = LayoutKind::Tokenizer;
    if (is_file(p / "tokenizer_config.json")) layout.config = (p / "tokenizer_config.json").string();
    return layout;
  }
  // A folder holding exactly one safetensors file or one index is that checkpoint.
  std::vector<std::string> files, indexes, pickles;
  for (const auto& entry : fs::directory_iterator(p, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (ends_with(name, ".safetensors.index.json"))
      indexes.push_back(entry.path().string());
    else if (ends_with(name, ".safetensors"))
      files.push_back(entry.path().string());
    else if (is_pickle_checkpoint(entry.path().string()))
      pickles.push_back(entry.path().string());
  }
  if (indexes.size() == 1) {
    layout.kind = LayoutKind::ShardedSafeTensors;
    layout.weights = indexes[0];
  } else if (indexes.empty() && files.size() == 1) {
    layout.kind = LayoutKind::SafeTensorsFile;
    layout.weights = files[0];
  } else if (indexes.empty() && files.empty() && !pickles.empty()) {
    refuse_pickle_checkpoint(pickles[0]);
  }
  return layout;
}

}  // namespace a2a
