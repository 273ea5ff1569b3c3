#pragma once
// Hugging Face checkpoint layouts: what a path holds (a safetensors file, a sharded index, a
// transformers or diffusers model folder, a diffusers pipeline folder), where a component's weights
// are (with an optional variant such as "fp16"), refusing pickle files, and reading config.json
// with typed getters whose errors name the file and the field.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "weights/config_reader.h"
#include "weights/state_dict.h"

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
  std::string class_name;                     // _class_name
  std::string diffusers_version;              // _diffusers_version
  std::vector<PipelineComponent> components;  // in file order
  nlohmann::json options;                     // the other entries (requires_safety_checker, ...)
  const PipelineComponent* find(const std::string& name) const;
};
PipelineIndex read_model_index(const std::string& path);  // the file or its folder

struct CheckpointLayout {
  LayoutKind kind = LayoutKind::Unknown;
  std::string path;
  std::string config;      // config.json / scheduler_config.json when there is one
  std::string weights;     // the .safetensors file or the index; empty when there are none
  std::string variant;     // the variant asked for
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

}  // namespace a2a
