#pragma once
// Where one model component lives: given a model folder (or one of its files), or a pipeline folder
// and a component name ("unet", "vae", "text_encoder", "vocoder", ...), the component's folder, its
// parsed config.json and its weights (a single safetensors file or a sharded index, with a variant).
// Every model stage resolves its checkpoint here and loads it with load_weights.
#include <string>

#include "weights/config_reader.h"

namespace a2a {

struct ComponentRequest {
  std::string component;  // the subfolder of a pipeline folder; empty: `path` is the model itself
  std::string variant;    // "fp16" picks diffusion_pytorch_model.fp16.safetensors, ...
  bool needs_weights = true;
  std::string who;   // prefixes error messages: "latent_diffusion", "VAE", ...
  std::string hint;  // appended to a missing config error: what to give instead
};

struct ResolvedComponent {
  std::string folder;                                 // the component folder
  std::string pipeline_root;                          // the pipeline folder when `path` named one, else empty
  std::string config_path;                            // folder/config.json
  ConfigReader config{nlohmann::json::object(), ""};  // its source is config_path
  std::string weights;  // the .safetensors file or the *.safetensors.index.json; empty when not needed
  std::string variant;
};

// Errors (input errors naming the path): "missing_model" when `path` does not exist,
// "missing_config" when the component has no config.json, "missing_weights" / "pickle_checkpoint"
// when it has no safetensors weights, "bad_config" when config.json is not a JSON object.
ResolvedComponent resolve_component(const std::string& path, const ComponentRequest& request);

// The folder alone: root/component when it holds a config, else root itself (no checks).
std::string component_folder(const std::string& root, const std::string& component);

}  // namespace a2a
