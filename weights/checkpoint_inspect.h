#pragma once
// `a2a inspect PATH`: what a checkpoint file or folder holds, read from the headers alone (no
// tensor data is touched): every tensor's name, dtype and shape, totals, metadata, and the layout.
#include <nlohmann/json.hpp>

#include <string>

namespace a2a {

// {"path", "layout", "layout_kind", "class", "variant", "pipeline": {...} (pipelines),
//  "checkpoints": [{"component", "library", "class", "layout", "config", "weights", "files",
//                   "metadata", "index_metadata", "tensors": [{"name", "dtype", "shape",
//                   "parameters", "bytes"}], "totals": {...}}],
//  "totals": {"tensors", "parameters", "bytes", "dtypes": {"F32": count, ...}}}
// A pipeline component without weights has "weights": null and no tensors.
nlohmann::json inspect_checkpoint_json(const std::string& path, const std::string& variant = "");

// The same as a human-readable listing.
std::string inspect_checkpoint(const std::string& path, const std::string& variant = "");

}  // namespace a2a
