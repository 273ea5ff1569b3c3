#pragma once
// Reading configuration JSON (config.json, scheduler_config.json, ...) into options structs.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace a2a {

// config.json (or any JSON object file); a folder means its config.json. Errors: "missing_config",
// "bad_config" (with the byte position of a syntax error).
nlohmann::json read_config_json(const std::string& path);

// Typed access to a configuration object. Every error names the source file and the key, and
// says which type was expected and what was found. JSON null is None in the reference libraries:
// read it into a std::optional (or with get_optional); a plain field rejects it.
//
//   FooOptions FooOptions::from_json(const ConfigReader& c) {
//     FooOptions o;                                   // initializers = the reference defaults
//     c.read("in_channels", o.in_channels);           // int
//     c.read("block_out_channels", o.block_out_channels);  // std::vector<int64_t>
//     c.read("num_class_embeds", o.num_class_embeds); // std::optional<int64_t>: null -> nullopt
//     o.heads = c.get_per_block<int64_t>("attention_head_dim", o.block_out_channels.size(), 8);
//     return o;
//   }
class ConfigReader {
 public:
  ConfigReader(nlohmann::json config, std::string source);
  static ConfigReader from_file(const std::string& path);  // read_config_json

  const nlohmann::json& json() const { return config_; }
  const std::string& source() const { return source_; }
  bool contains(const std::string& key) const { return config_.contains(key); }
  bool is_null(const std::string& key) const;

  // The value, or `fallback` when the key is absent or null (None: "use the default").
  template <typename T>
  T get_or(const std::string& key, const T& fallback) const {
    auto it = config_.find(key);
    if (it == config_.end() || it->is_null()) return fallback;
    T out{};
    convert(*it, key, out);
    return out;
  }
  // The value, or `fallback` when the key is absent.
  template <typename T>
  T get(const std::string& key, const T& fallback) const {
    auto it = config_.find(key);
    if (it == config_.end()) return fallback;
    T out{};
    convert(*it, key, out);
    return out;
  }
  // The value; absent is an error.
  template <typename T>
  T require(const std::string& key) const {
    auto it = config_.find(key);
    if (it == config_.end()) missing(key);
    T out{};
    convert(*it, key, out);
    return out;
  }
  // The value, or nullopt when absent or null.
  template <typename T>
  std::optional<T> get_optional(const std::string& key) const {
    auto it = config_.find(key);
    if (it == config_.end() || it->is_null()) return std::nullopt;
    T out{};
    convert(*it, key, out);
    return out;
  }
  // Overwrites `field` when the key is present: the struct's initializer stays the default.
  template <typename T>
  void read(const std::string& key, T& field) const {
    field = get(key, field);
  }
  template <typename T>
  void read(const std::string& key, std::optional<T>& field) const {
    auto it = config_.find(key);
    if (it == config_.end()) return;
    if (it->is_null()) {
      field.reset();
      return;
    }
    T out{};
    convert(*it, key, out);
    field = std::move(out);
  }
  // A diffusers field that is either one value for every block or a list with one per block
  // (attention_head_dim, transformer_layers_per_block, ...). Absent gives `fallback` broadcast.
  template <typename T>
  std::vector<T> get_per_block(const std::string& key, size_t blocks, const T& fallback) const {
    auto it = config_.find(key);
    if (it == config_.end()) return std::vector<T>(blocks, fallback);
    if (!it->is_array()) {
      T one{};
      convert(*it, key, one);
      return std::vector<T>(blocks, one);
    }
    std::vector<T> out;
    convert(*it, key, out);
    if (out.size() != blocks) wrong_length(key, out.size(), blocks);
    return out;
  }
  // A configuration object nested under `key` (vision_config, ...); absent gives an empty one.
  ConfigReader child(const std::string& key) const;

 private:
  [[noreturn]] void missing(const std::string& key) const;
  [[noreturn]] void wrong_length(const std::string& key, size_t got, size_t expected) const;
  void convert(const nlohmann::json& v, const std::string& key, bool& out) const;
  void convert(const nlohmann::json& v, const std::string& key, int& out) const;
  void convert(const nlohmann::json& v, const std::string& key, int64_t& out) const;
  void convert(const nlohmann::json& v, const std::string& key, double& out) const;
  void convert(const nlohmann::json& v, const std::string& key, float& out) const;
  void convert(const nlohmann::json& v, const std::string& key, std::string& out) const;
  void convert(const nlohmann::json& v, const std::string& key, nlohmann::json& out) const;
  template <typename T>
  void convert(const nlohmann::json& v, const std::string& key, std::vector<T>& out) const {
    if (!v.is_array()) type_error(key, "a list", v);
    out.clear();
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      T item{};
      convert(v[i], key + "[" + std::to_string(i) + "]", item);
      out.push_back(std::move(item));
    }
  }
  [[noreturn]] void type_error(const std::string& key, const char* expected, const nlohmann::json& got) const;

  nlohmann::json config_;
  std::string source_;
  std::string prefix_;  // "vision_config." for a child, so messages give the full key
};

// How a JSON value reads in an error message: `the string "abc"`, `a list`, `null`, `3.5`.
std::string describe_json(const nlohmann::json& v);

}  // namespace a2a
