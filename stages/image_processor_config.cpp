#include "stages/image_processor_config.h"

#include <cmath>
#include <filesystem>

#include "base/error.h"

namespace a2a {
namespace {

[[noreturn]] void unsupported_processor_value(const ConfigReader& config, const std::string& key,
                                              const std::string& why) {
  throw_input_error("bad_config", config.source() + ": " + key + " " + why);
}

// An int, or an object holding `field` (and nothing the preprocessing would ignore).
int64_t processor_square_size(const ConfigReader& config, const std::string& key, int64_t fallback) {
  const nlohmann::json value = config.get_or<nlohmann::json>(key, nlohmann::json());
  if (value.is_null()) return fallback;
  if (!value.is_object()) return config.get_or<int64_t>(key, fallback);
  const ConfigReader sizes = config.child(key);
  if (key == "size") {
    if (!value.contains("shortest_edge"))
      unsupported_processor_value(config, key,
                                  "must give shortest_edge (a fixed height x width resize is not supported)");
    return sizes.require<int64_t>("shortest_edge");
  }
  const int64_t height = sizes.require<int64_t>("height"), width = sizes.require<int64_t>("width");
  if (height != width)
    unsupported_processor_value(config, key,
                                "must be square, got " + std::to_string(height) + "x" + std::to_string(width));
  return height;
}

}  // namespace

ImagePreprocessOptions image_processor_options(const ConfigReader& config, ImagePreprocessOptions o) {
  o.resize = processor_square_size(config, "size", o.resize);
  o.crop = processor_square_size(config, "crop_size", o.crop);
  if (o.resize <= 0 || o.crop <= 0) unsupported_processor_value(config, "size / crop_size", "must be positive");
  if (!config.get_or("do_resize", true)) o.resize = 0;
  if (!config.get_or("do_center_crop", true)) o.crop = 0;
  const int64_t resample = config.get_or<int64_t>("resample", o.filter == ResizeFilter::Bicubic ? 3 : 2);
  if (resample != 2 && resample != 3)
    unsupported_processor_value(config, "resample",
                                std::to_string(resample) + " is not supported (2 = bilinear, 3 = bicubic)");
  o.filter = resample == 3 ? ResizeFilter::Bicubic : ResizeFilter::Bilinear;
  // The images here are already in [0, 1]: the processor's rescaling of 8-bit values is implied.
  const bool rescale = config.get_or("do_rescale", true);
  const double factor = config.get_or("rescale_factor", 1.0 / 255.0);
  if (!rescale || std::abs(factor * 255.0 - 1.0) > 1e-6)
    unsupported_processor_value(config, "do_rescale / rescale_factor", "must divide 8-bit values by 255");
  o.mean = config.get_or("image_mean", o.mean);
  o.std = config.get_or("image_std", o.std);
  if (o.mean.size() != 3 || o.std.size() != 3)
    unsupported_processor_value(config, "image_mean / image_std", "need three values");
  for (double s : o.std)
    if (!(s > 0.0)) unsupported_processor_value(config, "image_std", "values must be positive");
  if (!config.get_or("do_normalize", true)) {
    o.mean = {0.0, 0.0, 0.0};
    o.std = {1.0, 1.0, 1.0};
  }
  return o;
}

std::string find_preprocessor_config(const std::string& model_folder, const std::string& pipeline_root) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates = {fs::path(model_folder) / "preprocessor_config.json"};
  if (!pipeline_root.empty()) {
    candidates.push_back(fs::path(pipeline_root) / "feature_extractor" / "preprocessor_config.json");
    candidates.push_back(fs::path(pipeline_root) / "image_processor" / "preprocessor_config.json");
  }
  std::error_code ec;
  for (const auto& path : candidates)
    if (fs::is_regular_file(path, ec)) return path.string();
  return "";
}

}  // namespace a2a
