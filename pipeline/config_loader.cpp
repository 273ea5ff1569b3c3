#include "pipeline/config_loader.h"

#include "base/suggest.h"
#include "base/utf8.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace a2a {

namespace {

// One --set KEY=VALUE, split: KEY's dotted parts and VALUE parsed as YAML.
struct Override {
  std::string arg;  // as typed: KEY=VALUE
  std::string key;
  std::vector<std::string> parts;
  YAML::Node value;

  SourceLocation where() const { return SourceLocation{"--set " + arg, 0, 0}; }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorKind::Config, "bad_override", "--set " + key + ": " + why, where());
  }
};

struct Loader {
  std::string file;
  LoadLimits limits;
  std::vector<Override> overrides;
  std::vector<Error> errors;
  size_t json_nodes = 0;  // converted so far: aliases count each time they are expanded
  bool json_budget_reported = false;

  // Where a node was written: its line and column, or the --set that put it there (its value, or a key
  // that --set created).
  SourceLocation at(const YAML::Node& node, const std::string& key = "") const {
    for (const auto& o : overrides)
      if (o.value.is(node)) return o.where();
    YAML::Mark m = node.Mark();
    if (m.line >= 0) return SourceLocation{file, m.line + 1, m.column + 1};
    for (const auto& o : overrides)
      if (!key.empty() && std::find(o.parts.begin(), o.parts.end(), key) != o.parts.end()) return o.where();
    return SourceLocation{file, 0, 0};
  }
  SourceLocation at(const YAML::Mark& m) const { return SourceLocation{file, m.line + 1, m.column + 1}; }

  void error(const std::string& code, const std::string& message, const YAML::Node& node) {
    errors.push_back(Error(ErrorKind::Config, code, message, at(node)));
  }

  // Checks a mapping's keys against the allowed set; reports unknown and duplicate keys.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed, const std::string& where) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string key = it->first.as<std::string>("");
      if (!seen.insert(key).second) {
        error("duplicate_key", "key '" + key + "' appears twice in " + where, it->first);
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        errors.push_back(Error(ErrorKind::Config, "unknown_key",
                               "unknown key '" + key + "' in " + where + did_you_mean(key, allowed),
                               at(it->first, key)));
      }
    }
  }

  bool scalar_string(const YAML::Node& node, const std::string& what, std::string* out) {
    if (!node.IsScalar()) {
      error("bad_value", what + " must be a single value", node);
      return false;
    }
    *out = node.Scalar();
    return true;
  }

  template <class T>
  bool scalar_as(const YAML::Node& node, const std::string& what, T* out) {
    try {
      if (!node.IsScalar()) throw YAML::Exception(node.Mark(), "not a scalar");
      *out = node.as<T>();
      return true;
    } catch (const YAML::Exception&) {
      error("bad_value", what + " has the wrong type: '" + (node.IsScalar() ? node.Scalar() : std::string("...")) + "'",
            node);
      return false;
    }
  }
};

// A plain scalar as YAML types it: bool, int, float (YAML's .inf and .nan included), null, else a string.
Json plain_scalar(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF")
    return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -std::numeric_limits<double>::infinity();
  if (s.empty()) return s;
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (end && *end == '\0' && errno == 0) return static_cast<int64_t>(i);
  errno = 0;
  double d = std::strtod(s.c_str(), &end);
  bool numeric_start = std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+' || s[0] == '.';
  if (end && *end == '\0' && errno == 0 && numeric_start) return d;
  return s;
}

// Every string of a value ends up in JSON, which holds only UTF-8. The text was checked before parsing, but
// yaml-cpp decodes what looks like UTF-16 or UTF-32 (NUL bytes) into code points UTF-8 cannot hold.
bool utf8_text(Loader& L, const std::string& text, const YAML::Node& node) {
  if (invalid_utf8_offset(text) == std::string::npos) return true;
  L.error("bad_value", "a value that is not valid UTF-8 text", node);
  return false;
}

// A YAML node as JSON. Quoted scalars are strings. Aliases are expanded, so a few lines can stand for
// billions of nodes ("billion laughs"): the conversion stops at the limits with one error.
Json to_json(Loader& L, const YAML::Node& node, int depth = 0) {
  if (++L.json_nodes > L.limits.max_value_nodes || depth > L.limits.max_depth) {
    if (!L.json_budget_reported)
      L.error("too_large",
              "the config's values expand to more than " + std::to_string(L.limits.max_value_nodes) +
                  " nodes or nest deeper than " + std::to_string(L.limits.max_depth) +
                  " levels (aliases count each time they are used)",
              node);
    L.json_budget_reported = true;
    return nullptr;
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      Json arr = Json::array();
      for (const auto& e : node) {
        arr.push_back(to_json(L, e, depth + 1));
        if (L.json_budget_reported) break;
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      Json obj = Json::object();
      for (auto it = node.begin(); it != node.end() && !L.json_budget_reported; ++it) {
        const std::string key = it->first.as<std::string>("");
        if (utf8_text(L, key, it->first)) obj[key] = to_json(L, it->second, depth + 1);
      }
      return obj;
    }
    case YAML::NodeType::Scalar:
      if (!utf8_text(L, node.Scalar(), node)) return nullptr;
      if (node.Tag() == "!") return node.Scalar();  // quoted
      return plain_scalar(node.Scalar());
  }
  return nullptr;
}

// --set replaces scalars: a value is typed as YAML would type it (20, 0.5, true), and anything that
// would parse as a list or mapping ("[{text}]") stays the literal string the user typed.
YAML::Node parse_override_value(const std::string& text) {
  try {
    YAML::Node node = YAML::Load(text);
    if (node.IsScalar()) return node;
  } catch (const YAML::Exception&) {
  }
  YAML::Node node(text);
  node.SetTag("!");
  return node;
}

std::vector<std::string> split_dots(const std::string& key) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(key);
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

Override parse_override(const std::string& set) {
  auto eq = set.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error(ErrorKind::Usage, "bad_override", "--set needs KEY=VALUE, got '" + set + "'");
  }
  if (invalid_utf8_offset(set) != std::string::npos || set.find('\0') != std::string::npos)
    throw Error(ErrorKind::Usage, "bad_override", "--set argument is not valid UTF-8 text");
  Override o{set, set.substr(0, eq), {}, parse_override_value(set.substr(eq + 1))};
  o.parts = split_dots(o.key);
  for (const auto& p : o.parts) {
    if (p.empty()) throw Error(ErrorKind::Usage, "bad_override", "--set key '" + o.key + "' has an empty part");
  }
  return o;
}

// stages.ID.PARAM (a parameter, also under params) or stages.ID.KEY.SUBKEY...
void override_stage(YAML::Node root, const Override& o) {
  const auto& parts = o.parts;
  if (parts.size() < 3) o.fail("write stages.ID.PARAM");
  YAML::Node stages = root["stages"];
  if (!stages.IsSequence()) o.fail("the config has no stages list");
  YAML::Node target;
  for (auto s : stages) {
    if (s.IsMap() && s["id"] && s["id"].IsScalar() && s["id"].Scalar() == parts[1]) target.reset(s);
  }
  if (!target.IsDefined() || target.IsNull()) o.fail("no stage has id '" + parts[1] + "'");
  static const std::set<std::string> stage_keys = {"id", "type", "params", "inputs"};
  if (!stage_keys.count(parts[2])) {
    if (!target["params"]) target["params"] = YAML::Node(YAML::NodeType::Map);
    if (!target["params"].IsMap()) o.fail("'params' of stage '" + parts[1] + "' is a value, not a mapping");
    target.reset(target["params"]);
  }
  for (size_t i = 2; i + 1 < parts.size(); ++i) {
    YAML::Node next = target[parts[i]];
    if (next && !next.IsMap()) o.fail("'" + parts[i] + "' of stage '" + parts[1] + "' is a value, not a mapping");
    if (!next) target[parts[i]] = YAML::Node(YAML::NodeType::Map);
    target.reset(target[parts[i]]);
  }
  target[parts.back()] = o.value;
}

// inputs.NAME: the graph input's default.
void override_input_default(YAML::Node root, const Override& o) {
  YAML::Node inputs = root["inputs"];
  if (!inputs.IsMap() || !inputs[o.parts[1]]) o.fail("no graph input named '" + o.parts[1] + "'");
  YAML::Node decl = inputs[o.parts[1]];
  if (!decl.IsMap()) {
    o.fail("graph input '" + o.parts[1] + "' is declared without a type mapping; write {type: ..., default: ...}");
  }
  decl["default"] = o.value;
}

// Applies one KEY=VALUE override to the YAML tree. Stages are addressed by id; a stage's
// parameters may be named directly (stages.denoise.steps) or under params; a graph input's
// default is set by naming the input (inputs.prompt=...).
Override apply_override(YAML::Node root, const std::string& set) {
  const Override o = parse_override(set);
  if (!root.IsMap()) o.fail("the config is not a mapping");
  if (o.parts[0] == "stages") {
    try {
      override_stage(root, o);
    } catch (const YAML::Exception& e) {  // yaml-cpp refusing a step the checks above did not foresee
      o.fail(e.msg);
    }
    return o;
  }
  if (o.parts[0] == "inputs" && o.parts.size() == 2) {
    override_input_default(root, o);
    return o;
  }
  YAML::Node target = root;
  for (size_t i = 0; i + 1 < o.parts.size(); ++i) {
    YAML::Node next = target[o.parts[i]];
    if (!next.IsMap()) o.fail("'" + o.parts[i] + "' is not a mapping in the config");
    target.reset(next);
  }
  target[o.parts.back()] = o.value;
  return o;
}

void convert_settings(Loader& L, const YAML::Node& root, GraphBuilder& b) {
  if (auto v = root["version"]) {
    int version = 0;
    if (L.scalar_as(v, "version", &version) && version != 1) {
      L.error("bad_value", "unsupported config version " + std::to_string(version) + " (this build reads version 1)",
              v);
    }
  }
  for (const char* key : {"device", "dtype", "seed", "threads", "workers", "cache_mb"})
    if (auto v = root[key]) b.mutable_spec().setting_where[key] = L.at(v);
  std::string s;
  if (auto v = root["name"]; v && L.scalar_string(v, "name", &s)) b.name(s);
  if (auto v = root["device"]; v && L.scalar_string(v, "device", &s)) b.device(s);
  if (auto v = root["dtype"]; v && L.scalar_string(v, "dtype", &s)) b.dtype(s);
  uint64_t seed = 0;
  if (auto v = root["seed"]; v && L.scalar_as(v, "seed", &seed)) b.seed(seed);
  int n = 0;
  if (auto v = root["threads"]; v && L.scalar_as(v, "threads", &n)) b.threads(n);
  if (auto v = root["workers"]; v && L.scalar_as(v, "workers", &n)) b.workers(n);
  int64_t megabytes = 0;
  if (auto v = root["cache_mb"]; v && L.scalar_as(v, "cache_mb", &megabytes)) b.cache_mb(megabytes);
  if (auto v = root["plugins"]) {
    if (!v.IsSequence()) {
      L.error("bad_value", "plugins must be a list of library paths", v);
    } else {
      for (const auto& p : v) {
        if (L.scalar_string(p, "a plugin path", &s)) b.plugin(expand_environment(s));
      }
    }
  }
}

// One entry of inputs: NAME: TYPE or NAME: {type: TYPE, default: VALUE, doc: TEXT}.
void convert_input(Loader& L, const YAML::Node& key, const YAML::Node& decl, GraphBuilder& b) {
  std::string name = key.as<std::string>("");
  std::string type_name;
  std::optional<Json> default_value;
  // yaml-cpp: assigning one Node to another overwrites the shared node, so rebind with reset().
  YAML::Node type_node;
  type_node.reset(decl);
  if (decl.IsScalar()) {
    type_name = decl.Scalar();
  } else if (decl.IsMap()) {
    L.check_keys(decl, {"type", "default", "doc"}, "graph input '" + name + "'");
    if (!decl["type"]) {
      L.error("missing_key", "graph input '" + name + "' needs a type", key);
      return;
    }
    type_node.reset(decl["type"]);
    if (!L.scalar_string(type_node, "type", &type_name)) return;
    if (decl["default"]) {
      Json d = to_json(L, decl["default"]);
      if (d.is_string()) d = expand_environment(d.get<std::string>());
      default_value = d;
    }
  } else {
    L.error("bad_value", "graph input '" + name + "' must be a type or {type: ..., default: ...}", decl);
    return;
  }
  ValueType type;
  if (!value_type_from_name(type_name, &type)) {
    std::vector<std::string> names = {"text", "tokens", "image", "audio", "video", "embedding", "latent", "tensor"};
    L.error("bad_value",
            "graph input '" + name + "' has unknown type '" + type_name + "'" + did_you_mean(type_name, names),
            type_node);
    return;
  }
  b.input(name, type, default_value, L.at(key));
}

void convert_inputs(Loader& L, const YAML::Node& inputs, GraphBuilder& b) {
  if (!inputs.IsMap()) {
    L.error("bad_value", "inputs must be a mapping NAME: {type: ..., default: ...}", inputs);
    return;
  }
  for (auto it = inputs.begin(); it != inputs.end(); ++it) convert_input(L, it->first, it->second, b);
}

void convert_stage_params(Loader& L, const YAML::Node& params, const std::string& id, GraphBuilder::StageRef& ref) {
  if (!params.IsMap()) {
    L.error("bad_value", "params of stage '" + id + "' must be a mapping", params);
    return;
  }
  std::set<std::string> seen;
  for (auto p = params.begin(); p != params.end(); ++p) {
    std::string key = p->first.as<std::string>("");
    if (!seen.insert(key).second) {
      L.error("duplicate_key", "parameter '" + key + "' appears twice in stage '" + id + "'", p->first);
      continue;
    }
    ref.param(key, to_json(L, p->second), L.at(p->second));
  }
}

void convert_stage_wires(Loader& L, const YAML::Node& wires, const std::string& id, GraphBuilder::StageRef& ref) {
  if (!wires.IsMap()) {
    L.error("bad_value", "inputs of stage '" + id + "' must map PORT: inputs.NAME or STAGE.PORT", wires);
    return;
  }
  for (auto w = wires.begin(); w != wires.end(); ++w) {
    std::string source;
    if (L.scalar_string(w->second, "an input source", &source))
      ref.wire(w->first.as<std::string>(""), source, L.at(w->second));
  }
}

void convert_stage(Loader& L, const YAML::Node& st, GraphBuilder& b) {
  if (!st.IsMap()) {
    L.error("bad_value", "each stage must be a mapping with id and type", st);
    return;
  }
  L.check_keys(st, {"id", "type", "params", "inputs"}, "a stage");
  std::string id, type;
  bool ok = true;
  if (!st["id"]) {
    L.error("missing_key", "a stage needs an id", st);
    ok = false;
  } else if (!L.scalar_string(st["id"], "id", &id)) {
    ok = false;
  }
  if (!st["type"]) {
    L.error("missing_key", "stage '" + id + "' needs a type", st);
    ok = false;
  } else if (!L.scalar_string(st["type"], "type", &type)) {
    ok = false;
  }
  if (!ok) return;
  auto ref = b.stage(id, type, L.at(st), L.at(st["type"]));
  if (auto params = st["params"]) convert_stage_params(L, params, id, ref);
  if (auto wires = st["inputs"]) convert_stage_wires(L, wires, id, ref);
}

void convert_stages(Loader& L, const YAML::Node& root, GraphBuilder& b) {
  auto stages = root["stages"];
  if (!stages) {
    L.error("missing_key", "the config needs a stages list", root);
  } else if (!stages.IsSequence()) {
    L.error("bad_value", "stages must be a list of {id, type, params, inputs}", stages);
  } else if (stages.size() > L.limits.max_stages) {
    L.error("too_large",
            "the config has " + std::to_string(stages.size()) + " stages, more than the limit of " +
                std::to_string(L.limits.max_stages),
            stages);
  } else {
    for (const auto& st : stages) convert_stage(L, st, b);
  }
}

// One entry of outputs: NAME: STAGE.PORT or NAME: {from: STAGE.PORT, save: FILE}.
void convert_output(Loader& L, const YAML::Node& key, const YAML::Node& decl, GraphBuilder& b) {
  std::string name = key.as<std::string>("");
  std::string from, save;
  if (decl.IsScalar()) {
    from = decl.Scalar();
  } else if (decl.IsMap()) {
    L.check_keys(decl, {"from", "save"}, "output '" + name + "'");
    if (!decl["from"]) {
      L.error("missing_key", "output '" + name + "' needs from: STAGE.PORT", key);
      return;
    }
    if (!L.scalar_string(decl["from"], "from", &from)) return;
    if (decl["save"] && !L.scalar_string(decl["save"], "save", &save)) return;
    save = expand_environment(save);
  } else {
    L.error("bad_value", "output '" + name + "' must be STAGE.PORT or {from: ..., save: ...}", decl);
    return;
  }
  b.output(name, from, save, L.at(decl.IsMap() ? decl["from"] : decl));
}

void convert_outputs(Loader& L, const YAML::Node& root, GraphBuilder& b) {
  auto outputs = root["outputs"];
  if (!outputs) {
    L.error("missing_key", "the config needs an outputs mapping", root);
  } else if (!outputs.IsMap()) {
    L.error("bad_value", "outputs must map NAME: {from: STAGE.PORT, save: FILE}", outputs);
  } else {
    for (auto it = outputs.begin(); it != outputs.end(); ++it) convert_output(L, it->first, it->second, b);
  }
}

void convert(Loader& L, const YAML::Node& root, GraphBuilder& b) {
  if (!root.IsDefined() || root.IsNull()) {
    L.errors.push_back(Error(ErrorKind::Config, "bad_value", "the config is empty; it needs stages and outputs",
                             SourceLocation{L.file, 1, 1}));
    return;
  }
  if (!root.IsMap()) {
    L.error("bad_value", "the config must be a mapping with stages and outputs", root);
    return;
  }
  L.check_keys(root,
               {"version", "name", "device", "dtype", "seed", "threads", "workers", "cache_mb", "plugins", "inputs",
                "stages", "outputs"},
               "the config");
  convert_settings(L, root, b);
  if (auto inputs = root["inputs"]) convert_inputs(L, inputs, b);
  convert_stages(L, root, b);
  convert_outputs(L, root, b);
}

}  // namespace

GraphBuilder parse_graph_yaml(const std::string& text, const std::string& file, const std::vector<std::string>& sets,
                              const LoadLimits& limits) {
  Loader L;
  L.file = file;
  L.limits = limits;
  if (text.size() > limits.max_bytes)
    throw ErrorList({Error(ErrorKind::Config, "too_large",
                           "the config is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                               std::to_string(limits.max_bytes),
                           SourceLocation{file, 1, 1})});
  // YAML allows no NUL character, and yaml-cpp would take NUL bytes as a sign of UTF-16 or UTF-32.
  size_t bad = invalid_utf8_offset(text);
  if (const size_t nul = text.find('\0'); nul < bad) bad = nul;
  if (bad != std::string::npos) {
    const size_t newline = bad == 0 ? std::string::npos : text.rfind('\n', bad - 1);
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + bad, '\n'));
    const int column = 1 + static_cast<int>(bad - line_start);
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
    throw ErrorList({Error(
        ErrorKind::Config, "yaml_syntax",
        std::string("the config is not valid UTF-8 text (byte ") + byte + " at offset " + std::to_string(bad) + ")",
        SourceLocation{file, line, column})});
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's own guard; its message says only "bad file"
    throw ErrorList({Error(ErrorKind::Config, "too_large",
                           "the YAML nests deeper than " + std::to_string(e.depth()) + " levels", L.at(e.mark))});
  } catch (const YAML::ParserException& e) {
    throw ErrorList({Error(ErrorKind::Config, "yaml_syntax", e.msg, L.at(e.mark))});
  }
  for (const auto& set : sets) L.overrides.push_back(apply_override(root, set));
  GraphBuilder builder;
  if (!file.empty()) builder.source_file(file);
  convert(L, root, builder);
  // Kept for build(), which adds what the passes that do not depend on the missing parts find.
  builder.load_errors(std::move(L.errors));
  return builder;
}

GraphBuilder load_graph_yaml(const std::string& path, const std::vector<std::string>& sets, const LoadLimits& limits) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(ErrorKind::Config, "config_not_found", "'" + path + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Config, "config_not_found", "cannot read config file '" + path + "'");
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > limits.max_bytes)
    throw Error(ErrorKind::Config, "too_large",
                "config file '" + path + "' is " + std::to_string(size) + " bytes, more than the limit of " +
                    std::to_string(limits.max_bytes));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_graph_yaml(buffer.str(), path, sets, limits);
}

}  // namespace a2a
