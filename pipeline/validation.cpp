#include "pipeline/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

namespace a2a {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best = closest_match(word, candidates);
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

Error config_error(const std::string& code, const std::string& message, const SourceLocation& where) {
  return Error(ErrorKind::Config, code, message, where);
}

bool is_integer(const Json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

// Checks one parameter value against its spec; returns the normalised value or adds errors.
std::optional<Json> check_param(const ParamSpec& spec, const Json& value, const std::string& stage_id,
                                const SourceLocation& where, std::vector<Error>& errors) {
  const std::string what = "parameter '" + spec.name + "' of stage '" + stage_id + "'";
  auto type_error = [&](const std::string& expected) {
    errors.push_back(config_error("param_type", what + " must be " + expected + ", got " + value.dump(), where));
    return std::nullopt;
  };
  auto range_check = [&](double v) -> bool {
    if ((spec.min && v < *spec.min) || (spec.max && v > *spec.max)) {
      std::string range = "[" + (spec.min ? Json(*spec.min).dump() : std::string("-inf")) + ", " +
                          (spec.max ? Json(*spec.max).dump() : std::string("inf")) + "]";
      errors.push_back(config_error("param_out_of_range",
                                    what + " is " + Json(v).dump() + ", outside its range " + range, where));
      return false;
    }
    return true;
  };
  switch (spec.type) {
    case ParamType::Bool:
      if (!value.is_boolean()) return type_error("true or false");
      return value;
    case ParamType::Int:
      if (!is_integer(value)) return type_error("an integer");
      if (!range_check(value.get<double>())) return std::nullopt;
      return value;
    case ParamType::Float:
      if (!value.is_number()) return type_error("a number");
      if (!range_check(value.get<double>())) return std::nullopt;
      return Json(value.get<double>());
    case ParamType::String:
    case ParamType::Path: {
      if (!value.is_string()) return type_error("a string");
      std::string s = expand_environment(value.get<std::string>());
      if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
        std::string list;
        for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
        errors.push_back(config_error("param_not_allowed",
                                      what + " is '" + s + "', expected one of: " + list + did_you_mean(s, spec.choices),
                                      where));
        return std::nullopt;
      }
      return Json(s);
    }
    case ParamType::IntList:
    case ParamType::FloatList:
    case ParamType::StringList: {
      if (!value.is_array()) return type_error(std::string("a list (") + param_type_name(spec.type) + ")");
      Json out = Json::array();
      for (const auto& e : value) {
        if (spec.type == ParamType::StringList) {
          if (!e.is_string()) return type_error("a list of strings");
          out.push_back(expand_environment(e.get<std::string>()));
        } else if (spec.type == ParamType::IntList) {
          if (!is_integer(e)) return type_error("a list of integers");
          if (!range_check(e.get<double>())) return std::nullopt;
          out.push_back(e);
        } else {
          if (!e.is_number()) return type_error("a list of numbers");
          if (!range_check(e.get<double>())) return std::nullopt;
          out.push_back(e.get<double>());
        }
      }
      return out;
    }
    case ParamType::Object:
      if (!value.is_object()) return type_error("a mapping");
      return value;
  }
  return value;
}

bool port_types_compatible(ValueType from, ValueType to) {
  if (from == to) return true;
  // A generic tensor port takes any tensor-carrying value.
  return to == ValueType::Tensor && from != ValueType::Text;
}

bool save_path_escapes(const std::string& save) {
  std::filesystem::path p(save);
  if (p.is_absolute()) return true;
  int depth = 0;
  for (const auto& part : p.lexically_normal()) {
    if (part == "..") {
      if (--depth < 0) return true;
    } else if (part != "." && !part.empty()) {
      ++depth;
    }
  }
  return false;
}

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string expand_environment(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t close = text.find('}', i + 2);
      if (close != std::string::npos) {
        std::string body = text.substr(i + 2, close - i - 2);
        std::string name = body, fallback;
        bool has_default = false;
        if (auto sep = body.find(":-"); sep != std::string::npos) {
          name = body.substr(0, sep);
          fallback = body.substr(sep + 2);
          has_default = true;
        }
        const char* env = std::getenv(name.c_str());
        if (env && *env) {
          out += env;
        } else if (has_default) {
          out += fallback;
        }
        i = close + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

const std::vector<std::string>& validation_codes() {
  static const std::vector<std::string> codes = {
      "yaml_syntax",        "unknown_key",           "duplicate_key",      "missing_key",        "bad_value",
      "duplicate_stage_id", "duplicate_input",       "duplicate_output",   "bad_setting",
      "unknown_stage_type", "unknown_param",         "param_type",         "param_out_of_range",
      "param_not_allowed",  "missing_param",         "unknown_port",       "bad_source",
      "unknown_source",     "required_input_unwired", "bad_ports",         "port_type_mismatch",
      "cycle",              "unknown_output_source", "save_path_escapes"};
  return codes;
}

std::vector<Error> validate_graph(const GraphSpec& input_spec, const StageRegistry& registry, ValidatedGraph* out) {
  std::vector<Error> errors;
  GraphSpec spec = input_spec;
  const SourceLocation file_where{spec.file, 0, 0};

  // Pass 1: structure.
  std::set<std::string> seen;
  std::set<std::string> broken;  // stages whose later checks would only repeat an earlier error
  for (const auto& s : spec.stages) {
    if (!seen.insert(s.id).second) {
      errors.push_back(config_error("duplicate_stage_id", "stage id '" + s.id + "' is used more than once", s.where));
      broken.insert(s.id);
    }
    if (s.id == "inputs") {
      errors.push_back(config_error("duplicate_stage_id", "'inputs' is reserved for graph inputs; rename the stage", s.where));
    }
  }
  std::set<std::string> input_names;
  for (const auto& i : spec.inputs) {
    if (!input_names.insert(i.name).second) {
      errors.push_back(config_error("duplicate_input", "graph input '" + i.name + "' is declared more than once", i.where));
    }
    if (i.default_value && i.default_value->is_object()) {
      errors.push_back(config_error("bad_value", "default of graph input '" + i.name + "' must be a scalar", i.where));
    }
  }
  std::set<std::string> output_names;
  for (const auto& o : spec.outputs) {
    if (!output_names.insert(o.name).second) {
      errors.push_back(config_error("duplicate_output", "output '" + o.name + "' is declared more than once", o.where));
    }
  }
  {
    const std::string& d = spec.device;
    bool device_ok = d == "cpu" || d == "cuda" || (d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                                                 std::all_of(d.begin() + 5, d.end(), ::isdigit));
    if (!device_ok) {
      errors.push_back(config_error("bad_setting", "device '" + d + "' is not cpu, cuda or cuda:N", file_where));
    }
    if (spec.dtype != "float32" && spec.dtype != "float16" && spec.dtype != "bfloat16") {
      errors.push_back(config_error("bad_setting", "dtype '" + spec.dtype + "' is not float32, float16 or bfloat16", file_where));
    }
    if (spec.workers < 1) errors.push_back(config_error("bad_setting", "workers must be at least 1", file_where));
    if (spec.threads < 0) errors.push_back(config_error("bad_setting", "threads must be 0 (all cores) or more", file_where));
  }

  // Pass 2: stage types.
  std::map<std::string, const StageInfo*> infos;
  for (const auto& s : spec.stages) {
    const StageInfo* info = registry.find(s.type);
    if (!info) {
      errors.push_back(config_error("unknown_stage_type",
                                    "stage '" + s.id + "' has unknown type '" + s.type + "'" +
                                        did_you_mean(s.type, registry.types()) + "; `a2a stages` lists them",
                                    s.type_where.known() ? s.type_where : s.where));
      broken.insert(s.id);
      continue;
    }
    if (!broken.count(s.id)) infos[s.id] = info;
  }

  // Pass 3: parameters (filled with defaults).
  for (auto& s : spec.stages) {
    auto it = infos.find(s.id);
    if (it == infos.end() || broken.count(s.id)) continue;
    const StageInfo& info = *it->second;
    std::vector<std::string> names;
    for (const auto& p : info.params) names.push_back(p.name);
    Json normalised = Json::object();
    bool params_ok = true;
    for (auto p = s.params.begin(); p != s.params.end(); ++p) {
      SourceLocation where = s.param_where.count(p.key()) ? s.param_where.at(p.key()) : s.where;
      const ParamSpec* ps = info.param(p.key());
      if (!ps) {
        errors.push_back(config_error("unknown_param",
                                      "stage '" + s.id + "' (" + s.type + ") has no parameter '" + p.key() + "'" +
                                          did_you_mean(p.key(), names),
                                      where));
        params_ok = false;
        continue;
      }
      if (p.value().is_null()) continue;  // explicit null = use the default
      auto checked = check_param(*ps, p.value(), s.id, where, errors);
      if (!checked) {
        params_ok = false;
        continue;
      }
      normalised[p.key()] = *checked;
    }
    for (const auto& ps : info.params) {
      if (normalised.contains(ps.name)) continue;
      if (ps.required) {
        errors.push_back(config_error("missing_param",
                                      "stage '" + s.id + "' (" + s.type + ") needs parameter '" + ps.name + "'", s.where));
        params_ok = false;
        continue;
      }
      if (!ps.default_value.is_null()) normalised[ps.name] = ps.default_value;
    }
    // Path parameters resolve against the config's folder.
    for (const auto& ps : info.params) {
      if (ps.type != ParamType::Path || !normalised.contains(ps.name)) continue;
      std::string path = normalised[ps.name].get<std::string>();
      if (!path.empty() && !spec.base_dir.empty() && !std::filesystem::path(path).is_absolute()) {
        normalised[ps.name] = (std::filesystem::path(spec.base_dir) / path).lexically_normal().string();
      }
    }
    s.params = normalised;
    if (!params_ok) broken.insert(s.id);
  }

  // Pass 4: ports and wiring.
  std::map<std::string, StagePorts> ports;
  for (const auto& s : spec.stages) {
    if (!infos.count(s.id) || broken.count(s.id)) continue;
    try {
      ports[s.id] = infos.at(s.id)->resolve_ports(s.params);
    } catch (const Error& e) {
      errors.push_back(config_error("bad_ports", "stage '" + s.id + "': " + e.message(), s.where));
      broken.insert(s.id);
    }
  }
  auto known_stage = [&](const std::string& id) { return spec.stage(id) != nullptr; };
  std::map<std::string, std::map<std::string, ValueType>> wired_types;  // stage -> port -> source type
  for (const auto& s : spec.stages) {
    if (!ports.count(s.id)) continue;
    const StagePorts& sp = ports.at(s.id);
    std::vector<std::string> in_names;
    for (const auto& p : sp.inputs) in_names.push_back(p.name);
    std::set<std::string> wired;
    for (const auto& w : s.inputs) {
      const PortSpec* dest = sp.input(w.port);
      if (!dest) {
        errors.push_back(config_error("unknown_port",
                                      "stage '" + s.id + "' (" + s.type + ") has no input port '" + w.port + "'" +
                                          did_you_mean(w.port, in_names),
                                      w.where));
        continue;
      }
      if (!wired.insert(w.port).second) {
        errors.push_back(config_error("unknown_port", "input port '" + w.port + "' of stage '" + s.id + "' is wired twice", w.where));
        continue;
      }
      auto ref = parse_source(w.source);
      if (!ref) {
        errors.push_back(config_error("bad_source",
                                      "'" + w.source + "' is not a source; write inputs.NAME or STAGE.PORT", w.where));
        continue;
      }
      if (ref->graph_input) {
        const GraphInput* gi = spec.input(ref->node);
        if (!gi) {
          std::vector<std::string> names;
          for (const auto& i : spec.inputs) names.push_back(i.name);
          errors.push_back(config_error("unknown_source",
                                        "graph input '" + ref->node + "' is not declared under inputs:" +
                                            did_you_mean(ref->node, names),
                                        w.where));
          continue;
        }
        wired_types[s.id][w.port] = gi->type;
        continue;
      }
      if (!known_stage(ref->node)) {
        std::vector<std::string> ids;
        for (const auto& o : spec.stages) ids.push_back(o.id);
        errors.push_back(config_error("unknown_source",
                                      "input '" + w.port + "' of stage '" + s.id + "' reads from unknown stage '" +
                                          ref->node + "'" + did_you_mean(ref->node, ids),
                                      w.where));
        continue;
      }
      if (!ports.count(ref->node)) continue;  // that stage already has an error
      const PortSpec* src = ports.at(ref->node).output(ref->port);
      if (!src) {
        std::vector<std::string> outs;
        for (const auto& p : ports.at(ref->node).outputs) outs.push_back(p.name);
        errors.push_back(config_error("unknown_source",
                                      "stage '" + ref->node + "' has no output port '" + ref->port + "'" +
                                          did_you_mean(ref->port, outs),
                                      w.where));
        continue;
      }
      wired_types[s.id][w.port] = src->type;
    }
    for (const auto& p : sp.inputs) {
      if (p.required && !wired.count(p.name)) {
        errors.push_back(config_error("required_input_unwired",
                                      "required input '" + p.name + "' (" + value_type_name(p.type) + ") of stage '" +
                                          s.id + "' is not wired",
                                      s.where));
      }
    }
  }

  // Pass 5: port types.
  for (const auto& s : spec.stages) {
    if (!ports.count(s.id)) continue;
    for (const auto& w : s.inputs) {
      auto st = wired_types[s.id].find(w.port);
      if (st == wired_types[s.id].end()) continue;
      const PortSpec* dest = ports.at(s.id).input(w.port);
      if (!port_types_compatible(st->second, dest->type)) {
        errors.push_back(config_error("port_type_mismatch",
                                      "input '" + w.port + "' of stage '" + s.id + "' takes " + value_type_name(dest->type) +
                                          " but '" + w.source + "' gives " + value_type_name(st->second),
                                      w.where));
      }
    }
  }

  // Pass 6: cycles.
  {
    std::map<std::string, std::vector<std::string>> deps;
    for (const auto& s : spec.stages) {
      for (const auto& w : s.inputs) {
        auto ref = parse_source(w.source);
        if (ref && !ref->graph_input && known_stage(ref->node)) deps[s.id].push_back(ref->node);
      }
    }
    std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
    std::vector<std::string> stack;
    std::set<std::string> reported;
    std::function<void(const std::string&)> visit = [&](const std::string& id) {
      state[id] = 1;
      stack.push_back(id);
      for (const auto& d : deps[id]) {
        if (state[d] == 1) {
          // The stack holds each stage before the one it reads from; name them in data-flow order.
          auto start = std::find(stack.begin(), stack.end(), d);
          std::vector<std::string> cycle(start, stack.end());
          std::reverse(cycle.begin() + 1, cycle.end());
          std::vector<std::string> key = cycle;
          std::sort(key.begin(), key.end());
          std::string key_str;
          for (const auto& k : key) key_str += k + ",";
          if (reported.insert(key_str).second) {
            std::string names;
            for (const auto& c : cycle) names += c + " -> ";
            names += d;
            errors.push_back(config_error("cycle", "the stages form a cycle: " + names, spec.stage(d)->where));
          }
        } else if (state[d] == 0) {
          visit(d);
        }
      }
      stack.pop_back();
      state[id] = 2;
    };
    for (const auto& s : spec.stages)
      if (state[s.id] == 0) visit(s.id);
  }

  // Pass 7: outputs.
  for (const auto& o : spec.outputs) {
    auto ref = parse_source(o.source);
    if (!ref) {
      errors.push_back(config_error("unknown_output_source",
                                    "output '" + o.name + "' reads from '" + o.source + "'; write STAGE.PORT", o.where));
    } else if (ref->graph_input) {
      if (!spec.input(ref->node)) {
        errors.push_back(config_error("unknown_output_source",
                                      "output '" + o.name + "' reads from undeclared graph input '" + ref->node + "'", o.where));
      }
    } else if (!known_stage(ref->node)) {
      std::vector<std::string> ids;
      for (const auto& s : spec.stages) ids.push_back(s.id);
      errors.push_back(config_error("unknown_output_source",
                                    "output '" + o.name + "' reads from unknown stage '" + ref->node + "'" +
                                        did_you_mean(ref->node, ids),
                                    o.where));
    } else if (ports.count(ref->node) && !ports.at(ref->node).output(ref->port)) {
      std::vector<std::string> outs;
      for (const auto& p : ports.at(ref->node).outputs) outs.push_back(p.name);
      errors.push_back(config_error("unknown_output_source",
                                    "output '" + o.name + "': stage '" + ref->node + "' has no output port '" + ref->port +
                                        "'" + did_you_mean(ref->port, outs),
                                    o.where));
    }
    if (!o.save.empty() && save_path_escapes(o.save)) {
      errors.push_back(config_error("save_path_escapes",
                                    "output '" + o.name + "' would be saved to '" + o.save +
                                        "', outside the output directory; use a relative path inside it",
                                    o.where));
    }
  }

  if (errors.empty() && out) {
    out->spec = std::move(spec);
    out->ports = std::move(ports);
    out->infos = std::move(infos);
  }
  return errors;
}

ValidatedGraph validate_or_throw(const GraphSpec& spec, const StageRegistry& registry) {
  ValidatedGraph graph;
  auto errors = validate_graph(spec, registry, &graph);
  if (!errors.empty()) throw ErrorList(std::move(errors));
  return graph;
}

}  // namespace a2a
