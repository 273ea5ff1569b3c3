#pragma once
// Reading graph inputs from files and saving outputs, by file extension. The media library
// installs the codecs at load time; the pipeline core only calls through these hooks.
#include <functional>
#include <string>

#include "base/atomic_file.h"

#include "pipeline/value.h"

namespace a2a {

struct ValueFileCodec {
  // Reads a value of the given type from a file (image, audio, video, text).
  std::function<Value(const std::string& path, ValueType type)> load;
  // Writes a value to a file whose extension names the format. Must write atomically.
  std::function<void(const Value& value, const std::string& path)> save;
  // Why a value of that type cannot be saved under that name, or "" (validation's check of `save:`).
  std::function<std::string(ValueType type, const std::string& path)> save_problem;
};

void set_value_file_codec(ValueFileCodec codec);
const ValueFileCodec& value_file_codec();

// Loads through the installed codec; throws a2a::Error when none is installed.
Value load_value_file(const std::string& path, ValueType type);
void save_value_file(const Value& value, const std::string& path);

}  // namespace a2a
