// Installs the media codecs behind the pipeline's file hooks (graph input defaults given as paths,
// saved outputs), so the pipeline core stays free of OpenCV and libsndfile.
#include "pipeline/value_io.h"
#include "stages/media_file.h"

namespace a2a {
namespace {
const bool kInstalled = [] {
  set_value_file_codec(ValueFileCodec{
      [](const std::string& path, ValueType type) { return load_media_value(path, type); },
      [](const Value& value, const std::string& path) { save_value(value, path); }, media_extension_problem});
  return true;
}();
}  // namespace
}  // namespace a2a
