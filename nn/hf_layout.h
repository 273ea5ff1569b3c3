#pragma once
// Hugging Face checkpoint layouts: what a path holds (a safetensors file, a sharded index, a
// transformers or diffusers model folder, a diffusers pipeline folder), where a component's weights
// are (with an optional variant such as "fp16"), refusing pickle files, and reading config.json
// with typed getters whose errors name the file and the field.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "nn/state_dict.h"

namespace a2a {

enum class LayoutKind {
  SafeTensorsFile,     // one .safetensors file
  ShardedSafeTensors,  // a *.safetensors.index.json and its shards
  TransformersModel,   // folder: config.json + model.safetensors (or its index)
  DiffusersModel,      // folder: config.json + diffusion_pytorch_model.safetensors (or its index)
  DiffusersPipeline,   // folder: model_index.json + one subfolder per component
  Scheduler,           // folder: scheduler_config.json
  Tokenizer,           // folder: tokenizer files
  Processor,           // folder: preprocessor_config.json (image or feature processor)
  ConfigOnly,          // folder: config.json and no weights
  Unknown,
};

std::string layout_name(LayoutKind kind);  // "diffusers pipeline", ...

struct PipelineComponent {
  std::string name;        // the subfolder, e.g. "unet"
  std::string library;     // "diffusers", "transformers", ...; empty when model_index.json has null
  std::string class_name;  // "UNet2DConditionModel", ...; empty when null
};

// model_index.json of a diffusers pipeline folder.
struct PipelineIndex {
  std::string path;
  std::string class_name;         // _class_name
  std::string diffusers_version;  // _diffusers_version
  std::vector<PipelineComponent> components;  // in file order
  nlohmann::json options;                     // the other entries (requires_safety_checker, ...)
  const PipelineComponent* find(const std::string& name) const;
};
PipelineIndex read_model_index(const std::string& path);  // the file or its folder

struct CheckpointLayout {
  LayoutKind kind = LayoutKind::Unknown;
  std::string path;
  std::string config;   // config.json / scheduler_config.json when there is one
  std::string weights;  // the .safetensors file or the index; empty when there are none
  std::string variant;  // the variant asked for
  std::string class_name;  // _class_name (diffusers) or architectures[0] (transformers), when known
  // Pipelines: the index and one layout per component (in model_index.json order).
  std::optional<PipelineIndex> pipeline;
  std::vector<std::pair<PipelineComponent, CheckpointLayout>> components;
};

// Works out what `path` holds. Pickle files (.bin, .ckpt, .pt, .pth) raise "pickle_checkpoint"
// with the lines of Python that convert them to safetensors. `variant` picks e.g.
// diffusion_pytorch_model.fp16.safetensors in model folders (and in each pipeline component).
CheckpointLayout detect_layout(const std::string& path, const std::string& variant = "");

// The weights of a model folder: the diffusers or transformers file name (with the variant inserted
// before the extension, as `_add_variant` does), or its sharded index. Throws "missing_weights"
// when there are none (naming what was looked for and which variants exist) and
// "pickle_checkpoint" when only pickle weights are there. A file path is returned as it is.
std::string find_weights_file(const std::string& path, const std::string& variant = "");
// The same, but an absent file is std::nullopt instead of an error.
std::optional<std::string> find_weights_file_if_present(const std::string& folder, const std::string& variant = "");

// Pickle checkpoints are never loaded (unpickling runs arbitrary code).
bool is_pickle_checkpoint(const std::string& path);
std::string pickle_conversion_hint(const std::string& path);
[[noreturn]] void refuse_pickle_checkpoint(const std::string& path);

// Loads the weights at `path` (anything find_weights_file accepts) into `module`: tensors stay
// mapped until copied, and their pages are released as the copy proceeds, so resident memory peaks
// near one copy of the weights. With options.zero_copy, tensors whose dtype the module keeps are
// used in place.
LoadReport load_weights(torch::nn::Module& module, const std::string& path, LoadOptions options = {},
                        const std::string& variant = "");

// config.json (or any JSON object file); a folder means its config.json. Errors: "missing_config",
// "bad_config" (with the byte position of a syntax error).
nlohmann::json read_config_json(const std::string& path);

// Typed access to a configuration object. Every error names the source file and the key, and
// says which type was expected and what was found. JSON null is None in the reference libraries:
// read it into a std::optional (or with get_optional); a plain field rejects it.
//
//   FooOptions FooOptions::from_json(const ConfigReader& c) {
//     FooOptions o;                                   // initializers = the reference defaults
//     c.read("in_channels", o.in_channels);           // int
//     c.read("block_out_channels", o.block_out_channels);  // std::vector<int64_t>
//     c.read("num_class_embeds", o.num_class_embeds); // std::optional<int64_t>: null -> nullopt
//     o.heads = c.get_per_block<int64_t>("attention_head_dim", o.block_out_channels.size(), 8);
//     return o;
//   }
class ConfigReader {
 public:
  ConfigReader(nlohmann::json config, std::string source);
  static ConfigReader from_file(const std::string& path);  // read_config_json

  const nlohmann::json& json() const { return config_; }
  const std::string& source() const { return source_; }
  bool contains(const std::string& key) const { return config_.contains(key); }
  bool is_null(const std::string& key) const;

  // The value, or `fallback` when the key is absent.
  template <typename T>
  T get(const std::string& key, const T& fallback) const {
    auto it = config_.find(key);
    if (it == config_.end()) return fallback;
    T out{};
    convert(*it, key, out);
    return out;
  }
  // The value; absent is an error.
  template <typename T>
  T require(const std::string& key) const {
    auto it = config_.find(key);
    if (it == config_.end()) missing(key);
    T out{};
    convert(*it, key, out);
    return out;
  }
  // The value, or nullopt when absent or null.
  template <typename T>
  std::optional<T> get_optional(const std::string& key) const {
    auto it = config_.find(key);
    if (it == config_.end() || it->is_null()) return std::nullopt;
    T out{};
    convert(*it, key, out);
    return out;
  }
  // Overwrites `field` when the key is present: the struct's initializer stays the default.
  template <typename T>
  void read(const std::string& key, T& field) const {
    field = get(key, field);
  }
  template <typename T>
  void read(const std::string& key, std::optional<T>& field) const {
    auto it = config_.find(key);
    if (it == config_.end()) return;
    if (it->is_null()) {
      field.reset();
      return;
    }
    T out{};
    convert(*it, key, out);
    field = std::move(out);
  }
  // A diffusers field that is either one value for every block or a list with one per block
  // (attention_head_dim, transformer_layers_per_block, ...). Absent gives `fallback` broadcast.
  template <typename T>
  std::vector<T> get_per_block(const std::string& key, size_t blocks, const T& fallback) const {
    auto it = config_.find(key);
    if (it == config_.end()) return std::vector<T>(blocks, fallback);
    if (!it->is_array()) {
      T one{};
      convert(*it, key, one);
      return std::vector<T>(blocks, one);
    }
    std::vector<T> out;
    convert(*it, key, out);
    if (out.size() != blocks) wrong_length(key, out.size(), blocks);
    return out;
  }
  // A configuration object nested under `key` (vision_config, ...); absent gives an empty one.
  ConfigReader child(const std::string& key) const;

 private:
  [[noreturn]] void missing(const std::string& key) const;
  [[noreturn]] void wrong_length(const std::string& key, size_t got, size_t expected) const;
  void convert(const nlohmann::json& v, const std::string& key, bool& out) const;
  void convert(const nlohmann::json& v, const std::string& key, int& out) const;
  void convert(const nlohmann::json& v, const std::string& key, int64_t& out) const;
  void convert(const nlohmann::json& v, const std::string& key, double& out) const;
  void convert(const nlohmann::json& v, const std::string& key, float& out) const;
  void convert(const nlohmann::json& v, const std::string& key, std::string& out) const;
  void convert(const nlohmann::json& v, const std::string& key, nlohmann::json& out) const;
  template <typename T>
  void convert(const nlohmann::json& v, const std::string& key, std::vector<T>& out) const {
    if (!v.is_array()) type_error(key, "a list", v);
    out.clear();
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      T item{};
      convert(v[i], key + "[" + std::to_string(i) + "]", item);
      out.push_back(std::move(item));
    }
  }
  [[noreturn]] void type_error(const std::string& key, const char* expected, const nlohmann::json& got) const;

  nlohmann::json config_;
  std::string source_;
  std::string prefix_;  // "vision_config." for a child, so messages give the full key
};

}  // namespace a2a
