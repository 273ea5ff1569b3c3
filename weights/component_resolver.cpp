#include "weights/component_resolver.h"

#include <filesystem>

#include "base/error.h"
#include "base/path_query.h"
#include "weights/hf_layout.h"

namespace fs = std::filesystem;

namespace a2a {

namespace {

// The weights of a component folder (or a file named directly), with `who` in front of the error.
std::string component_weights(const std::string& path, const std::string& variant, const std::string& who) {
  try {
    return find_weights_file(path, variant);
  } catch (const Error& e) {
    if (who.empty()) throw;
    throw_input_error(e.code(), who + e.message());
  }
}

}  // namespace

std::string component_folder(const std::string& root, const std::string& component) {
  const fs::path sub = fs::path(root) / component;
  if (!component.empty() && (is_file(sub / "config.json") || is_file(sub / "scheduler_config.json")))
    return sub.string();
  return root;
}

ResolvedComponent resolve_component(const std::string& path, const ComponentRequest& request) {
  const std::string who = request.who.empty() ? "" : request.who + ": ";
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec))
    throw_input_error("missing_model", who + "model path '" + path + "' does not exist");
  ResolvedComponent out;
  out.variant = request.variant;
  fs::path root(path);
  std::string weights_file;  // a weights file named directly instead of its folder
  if (!is_folder(root)) {
    const std::string name = root.filename().string();
    if (name != "config.json" && name != "model_index.json") weights_file = path;
    root = root.parent_path().empty() ? fs::path(".") : root.parent_path();
  }
  // A pipeline folder: the component's subfolder, also when that lacks its config (the error names it).
  const fs::path sub = root / request.component;
  if (weights_file.empty() && !request.component.empty() && is_folder(sub) &&
      (is_file(sub / "config.json") || !is_file(root / "config.json"))) {
    out.folder = sub.string();
    out.pipeline_root = root.string();
  } else {
    out.folder = root.string();
  }
  out.config_path = (fs::path(out.folder) / "config.json").string();
  if (!is_file(out.config_path)) {
    throw_input_error("missing_config", who + "no config.json in " + out.folder +
                                            (request.hint.empty() ? "" : " (" + request.hint + ")"));
  }
  out.config = ConfigReader::from_file(out.config_path);
  if (request.needs_weights)
    out.weights = component_weights(weights_file.empty() ? out.folder : weights_file, request.variant, who);
  return out;
}

}  // namespace a2a
