#pragma once
// Reading scheduler_config.json fields with diffusers' semantics: an absent key or null keeps the
// default; a wrongly typed value is an input error naming the class and the key.
#include "base/error.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace a2a::scheduler_config {

[[noreturn]] inline void bad_field(const std::string& class_name, const std::string& key, const std::string& expected,
                                   const nlohmann::json& value) {
  throw_input_error("bad_scheduler_config", class_name + ": scheduler_config.json field '" + key + "' must be " +
                                                expected + ", got " + value.dump());
}

// Python's json writes the non-finite floats as bare Infinity / -Infinity / NaN; read_scheduler_config
// turns them into these strings.
inline double number_from_json(const nlohmann::json& value, const std::string& class_name, const std::string& key) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "Infinity") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  }
  bad_field(class_name, key, "a number", value);
}

inline void read(const nlohmann::json& config, const char* key, double& out, const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  out = number_from_json(*it, class_name, key);
}

inline void read(const nlohmann::json& config, const char* key, std::optional<double>& out,
                 const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  out = number_from_json(*it, class_name, key);
}

inline void read(const nlohmann::json& config, const char* key, int64_t& out, const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    bad_field(class_name, key, "an integer in range", *it);
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return;
  }
  // A whole float within int64's range (2^63 itself is not); 1e125 once reached an undefined conversion.
  if (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>() &&
      std::fabs(it->get<double>()) < 9223372036854775808.0) {
    out = static_cast<int64_t>(it->get<double>());
    return;
  }
  bad_field(class_name, key, "an integer", *it);
}

// Every table a scheduler builds has num_train_timesteps rows; trained models use 1000, so 2^20 is
// far beyond any real one and keeps a hostile config from asking for gigabytes.
constexpr int64_t kMaxTrainTimesteps = int64_t(1) << 20;

inline void check_train_timesteps(int64_t value, const std::string& class_name) {
  if (value < 2 || value > kMaxTrainTimesteps)
    throw_input_error("bad_scheduler_config", class_name + ": num_train_timesteps must lie in [2, " +
                                                  std::to_string(kMaxTrainTimesteps) + "], got " +
                                                  std::to_string(value));
}

inline void read(const nlohmann::json& config, const char* key, bool& out, const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  // diffusers stores some flags as integers (rescale_betas_zero_snr: int = False).
  if (it->is_boolean()) {
    out = it->get<bool>();
    return;
  }
  if (it->is_number_integer()) {
    out = it->get<int64_t>() != 0;
    return;
  }
  bad_field(class_name, key, "true or false", *it);
}

inline void read(const nlohmann::json& config, const char* key, std::string& out, const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (!it->is_string()) bad_field(class_name, key, "a string", *it);
  out = it->get<std::string>();
}

inline void read(const nlohmann::json& config, const char* key, std::optional<std::string>& out,
                 const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (!it->is_string()) bad_field(class_name, key, "a string or null", *it);
  out = it->get<std::string>();
}

inline void read(const nlohmann::json& config, const char* key, std::vector<double>& out,
                 const std::string& class_name) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (!it->is_array()) bad_field(class_name, key, "a list of numbers or null", *it);
  out.clear();
  for (const auto& value : *it) out.push_back(number_from_json(value, class_name, key));
}

}  // namespace a2a::scheduler_config
