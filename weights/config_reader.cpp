#include "weights/config_reader.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "base/error.h"
#include "base/json_parse.h"

namespace fs = std::filesystem;

namespace a2a {

namespace {

// A configuration file larger than this is not a configuration file.
constexpr uintmax_t kMaxConfigBytes = 64ull * 1000 * 1000;

std::string read_small_file(const std::string& path, const char* code) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) throw_input_error(code, path + ": cannot read: " + ec.message());
  if (size > kMaxConfigBytes) {
    throw_input_error("bad_config",
                      path + ": " + std::to_string(size) + " bytes is too large for a configuration file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error(code, path + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::string describe_json(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "the string \"" + s + "\"";
    }
    case nlohmann::json::value_t::array: return "a list";
    case nlohmann::json::value_t::object: return "an object";
    default: return v.dump();
  }
}

nlohmann::json read_config_json(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / "config.json").string();
  if (!fs::exists(file, ec)) throw_input_error("missing_config", file + ": no such file");
  const std::string text = read_small_file(file, "missing_config");
  nlohmann::json config;
  try {
    config = parse_json_bounded(text, file);
  } catch (const nlohmann::json::parse_error& e) {
    throw_input_error("bad_config", file + ": not valid JSON (byte " + std::to_string(e.byte) + "): " + e.what());
  } catch (const nlohmann::json::exception& e) {  // a number too large for a double, found by the fuzzer
    throw_input_error("bad_config", file + ": not valid JSON: " + e.what());
  }
  if (!config.is_object()) throw_input_error("bad_config", file + ": not a JSON object");
  return config;
}

// ---------------------------------------------------------------------------------------------
// ConfigReader

ConfigReader::ConfigReader(nlohmann::json config, std::string source)
    : config_(std::move(config)), source_(std::move(source)) {
  if (!config_.is_object()) throw_input_error("bad_config", source_ + ": the configuration is not a JSON object");
}

ConfigReader ConfigReader::from_file(const std::string& path) {
  std::error_code ec;
  std::string file = fs::is_directory(path, ec) ? (fs::path(path) / "config.json").string() : path;
  return ConfigReader(read_config_json(file), file);
}

bool ConfigReader::is_null(const std::string& key) const {
  auto it = config_.find(key);
  return it != config_.end() && it->is_null();
}

ConfigReader ConfigReader::child(const std::string& key) const {
  auto it = config_.find(key);
  nlohmann::json sub = nlohmann::json::object();
  if (it != config_.end() && !it->is_null()) {
    if (!it->is_object()) type_error(key, "an object", *it);
    sub = *it;
  }
  ConfigReader reader(std::move(sub), source_);
  reader.prefix_ = prefix_ + key + ".";
  return reader;
}

void ConfigReader::missing(const std::string& key) const {
  throw_input_error("bad_config", source_ + ": required field '" + prefix_ + key + "' is absent");
}

void ConfigReader::wrong_length(const std::string& key, size_t got, size_t expected) const {
  throw_input_error("bad_config", source_ + ": '" + prefix_ + key + "' has " + std::to_string(got) +
                                      " entries, but there are " + std::to_string(expected) + " blocks");
}

void ConfigReader::type_error(const std::string& key, const char* expected, const nlohmann::json& got) const {
  throw_input_error("bad_config",
                    source_ + ": '" + prefix_ + key + "' must be " + expected + ", not " + describe_json(got));
}

void ConfigReader::convert(const nlohmann::json& v, const std::string& key, bool& out) const {
  if (!v.is_boolean()) type_error(key, "true or false", v);
  out = v.get<bool>();
}

void ConfigReader::convert(const nlohmann::json& v, const std::string& key, int64_t& out) const {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      type_error(key, "an integer in range", v);
    out = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    out = v.get<int64_t>();
  } else if (v.is_number_float()) {
    // Python writes 16000.0 for a float field holding a whole number.
    double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) type_error(key, "an integer", v);
    out = static_cast<int64_t>(d);
  } else {
    type_error(key, "an integer", v);
  }
}

void ConfigReader::convert(const nlohmann::json& v, const std::string& key, int& out) const {
  int64_t wide = 0;
  convert(v, key, wide);
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
    type_error(key, "an integer in the 32-bit range", v);
  }
  out = static_cast<int>(wide);
}

void ConfigReader::convert(const nlohmann::json& v, const std::string& key, double& out) const {
  if (!v.is_number()) type_error(key, "a number", v);
  out = v.get<double>();
}

void ConfigReader::convert(const nlohmann::json& v, const std::string& key, float& out) const {
  double d = 0;
  convert(v, key, d);
  out = static_cast<float>(d);
}

void ConfigReader::convert(const nlohmann::json& v, const std::string& key, std::string& out) const {
  if (!v.is_string()) type_error(key, "a string", v);
  out = v.get<std::string>();
}

void ConfigReader::convert(const nlohmann::json& v, const std::string&, nlohmann::json& out) const { out = v; }

}  // namespace a2a
