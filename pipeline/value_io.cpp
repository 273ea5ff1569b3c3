#include "pipeline/value_io.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "base/error.h"

namespace a2a {

namespace {
std::mutex& codec_mutex() {
  static std::mutex m;
  return m;
}
ValueFileCodec& codec_storage() {
  static ValueFileCodec codec;
  return codec;
}
}  // namespace

void set_value_file_codec(ValueFileCodec codec) {
  std::lock_guard<std::mutex> lock(codec_mutex());
  codec_storage() = std::move(codec);
}

const ValueFileCodec& value_file_codec() {
  std::lock_guard<std::mutex> lock(codec_mutex());
  return codec_storage();
}

Value load_value_file(const std::string& path, ValueType type) {
  const auto& codec = value_file_codec();
  if (type == ValueType::Text && !codec.load) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_input_error("file_not_found", "cannot read '" + path + "'");
    return Value::text(std::string(std::istreambuf_iterator<char>(in), {}));
  }
  if (!codec.load) throw_input_error("no_codec", "no media codec is installed to read '" + path + "'");
  return codec.load(path, type);
}

void save_value_file(const Value& value, const std::string& path) {
  const auto& codec = value_file_codec();
  if (value.type() == ValueType::Text && !codec.save) {
    write_file_atomically(path, value.text());
    return;
  }
  if (!codec.save) throw_input_error("no_codec", "no media codec is installed to write '" + path + "'");
  codec.save(value, path);
}

}  // namespace a2a
