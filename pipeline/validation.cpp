#include "pipeline/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "base/suggest.h"
#include "pipeline/value_io.h"

namespace a2a {

namespace {

Error config_error(const std::string& code, const std::string& message, const SourceLocation& where) {
  return Error(ErrorKind::Config, code, message, where);
}

bool is_integer(const Json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

// JSON writes NaN and infinities as null; a message names them.
std::string number_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+inf" : "-inf";
  return Json(v).dump();
}

// One parameter value against its spec: the normalised value, or nullopt with errors added.
class ParamChecker {
 public:
  ParamChecker(const ParamSpec& spec, const std::string& stage_id, const SourceLocation& where,
               std::vector<Error>& errors)
      : spec_(spec),
        what_("parameter '" + spec.name + "' of stage '" + stage_id + "'"),
        where_(where),
        errors_(errors) {}

  std::optional<Json> check(const Json& value) {
    switch (spec_.type) {
      case ParamType::Bool:
        if (!value.is_boolean()) return type_error(value, "true or false");
        return value;
      case ParamType::Int:
        if (!is_integer(value)) return type_error(value, "an integer");
        if (!in_range(value.get<double>())) return std::nullopt;
        return value;
      case ParamType::Float:
        if (!value.is_number()) return type_error(value, "a number");
        if (!in_range(value.get<double>())) return std::nullopt;
        return Json(value.get<double>());
      case ParamType::String:
      case ParamType::Path: return check_string(value);
      case ParamType::IntList:
      case ParamType::FloatList:
      case ParamType::StringList: return check_list(value);
      case ParamType::Object:
        if (!value.is_object()) return type_error(value, "a mapping");
        return value;
    }
    return value;
  }

 private:
  std::nullopt_t type_error(const Json& value, const std::string& expected) {
    errors_.push_back(config_error("param_type", what_ + " must be " + expected + ", got " + value.dump(), where_));
    return std::nullopt;
  }

  bool in_range(double v) {
    if (!std::isfinite(v)) {
      // NaN passes every comparison; a range check alone would accept it.
      errors_.push_back(
          config_error("param_out_of_range", what_ + " is " + number_text(v) + ", not a finite number", where_));
      return false;
    }
    if ((!spec_.min || v >= *spec_.min) && (!spec_.max || v <= *spec_.max)) return true;
    std::string range = "[" + (spec_.min ? Json(*spec_.min).dump() : std::string("-inf")) + ", " +
                        (spec_.max ? Json(*spec_.max).dump() : std::string("inf")) + "]";
    errors_.push_back(
        config_error("param_out_of_range", what_ + " is " + Json(v).dump() + ", outside its range " + range, where_));
    return false;
  }

  std::optional<Json> check_string(const Json& value) {
    if (!value.is_string()) return type_error(value, "a string");
    std::string s = expand_environment(value.get<std::string>());
    const auto& choices = spec_.choices;
    if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
      std::string list;
      for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
      errors_.push_back(config_error(
          "param_not_allowed", what_ + " is '" + s + "', expected one of: " + list + did_you_mean(s, choices), where_));
      return std::nullopt;
    }
    return Json(s);
  }

  std::optional<Json> check_list(const Json& value) {
    if (!value.is_array()) return type_error(value, std::string("a list (") + param_type_name(spec_.type) + ")");
    Json out = Json::array();
    for (const auto& e : value) {
      if (spec_.type == ParamType::StringList) {
        if (!e.is_string()) return type_error(value, "a list of strings");
        out.push_back(expand_environment(e.get<std::string>()));
      } else if (spec_.type == ParamType::IntList) {
        if (!is_integer(e)) return type_error(value, "a list of integers");
        if (!in_range(e.get<double>())) return std::nullopt;
        out.push_back(e);
      } else {
        if (!e.is_number()) return type_error(value, "a list of numbers");
        if (!in_range(e.get<double>())) return std::nullopt;
        out.push_back(e.get<double>());
      }
    }
    return out;
  }

  const ParamSpec& spec_;
  const std::string what_;
  const SourceLocation& where_;
  std::vector<Error>& errors_;
};

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

template <typename Items, typename Name>
std::vector<std::string> names_of(const Items& items, Name name) {
  std::vector<std::string> names;
  for (const auto& item : items) names.push_back(name(item));
  return names;
}

// The parameter pass for one stage: given values checked, defaults filled in, Path parameters
// resolved against the config's folder.
struct ParamPass {
  std::vector<Error>& errors;
  const std::string& base_dir;

  bool normalise(StageNode& s, const StageInfo& info) {
    Json normalised = Json::object();
    bool ok = check_given_params(s, info, normalised);
    ok = fill_defaults(s, info, normalised) && ok;
    resolve_paths(info, normalised);
    s.params = normalised;
    // A stage's rules may read the files its Path parameters name.
    return ok && check_paths_exist(s, info) && check_stage_rules(s, info);
  }

  void fail(const std::string& code, const std::string& message, const SourceLocation& where) {
    errors.push_back(config_error(code, message, where));
  }

  static SourceLocation where_of(const StageNode& s, const std::string& param) {
    auto it = s.param_where.find(param);
    return it != s.param_where.end() ? it->second : s.where;
  }

  // A named model, tokenizer or weights file that is absent is an error here, never a silent switch to
  // a preset when the stage is configured.
  bool check_paths_exist(const StageNode& s, const StageInfo& info) {
    bool ok = true;
    for (const auto& ps : info.params) {
      if (ps.type != ParamType::Path || !ps.must_exist || !s.params.contains(ps.name)) continue;
      const std::string path = s.params[ps.name].get<std::string>();
      std::error_code ec;
      if (path.empty() || std::filesystem::exists(path, ec)) continue;
      errors.push_back(
          Error(ErrorKind::Input, "path_not_found",
                "parameter '" + ps.name + "' of stage '" + s.id + "' names '" + path + "', which does not exist",
                where_of(s, ps.name)));
      ok = false;
    }
    return ok;
  }

  bool check_stage_rules(const StageNode& s, const StageInfo& info) {
    if (!info.check_params) return true;
    std::vector<ParamProblem> problems;
    try {
      problems = info.check_params(s.params);
    } catch (const Error& e) {
      problems.push_back({"", e.code(), e.message()});
    }
    for (const auto& p : problems)
      fail(p.code, "stage '" + s.id + "' (" + s.type + "): " + p.message,
           p.param.empty() ? s.where : where_of(s, p.param));
    return problems.empty();
  }

  bool check_given_params(const StageNode& s, const StageInfo& info, Json& normalised) {
    bool ok = true;
    for (auto p = s.params.begin(); p != s.params.end(); ++p) {
      SourceLocation where = s.param_where.count(p.key()) ? s.param_where.at(p.key()) : s.where;
      const ParamSpec* ps = info.param(p.key());
      if (!ps) {
        const auto names = names_of(info.params, [](const ParamSpec& q) { return q.name; });
        fail("unknown_param",
             "stage '" + s.id + "' (" + s.type + ") has no parameter '" + p.key() + "'" + did_you_mean(p.key(), names),
             where);
        ok = false;
        continue;
      }
      if (p.value().is_null()) continue;  // explicit null = use the default
      auto checked = ParamChecker(*ps, s.id, where, errors).check(p.value());
      if (!checked) {
        ok = false;
        continue;
      }
      normalised[p.key()] = *checked;
    }
    return ok;
  }

  bool fill_defaults(const StageNode& s, const StageInfo& info, Json& normalised) {
    bool ok = true;
    for (const auto& ps : info.params) {
      if (normalised.contains(ps.name)) continue;
      if (ps.required) {
        fail("missing_param", "stage '" + s.id + "' (" + s.type + ") needs parameter '" + ps.name + "'", s.where);
        ok = false;
        continue;
      }
      if (!ps.default_value.is_null()) normalised[ps.name] = ps.default_value;
    }
    return ok;
  }

  void resolve_paths(const StageInfo& info, Json& normalised) const {
    for (const auto& ps : info.params) {
      if (ps.type != ParamType::Path || !normalised.contains(ps.name)) continue;
      std::string path = normalised[ps.name].get<std::string>();
      if (!path.empty() && !base_dir.empty() && !std::filesystem::path(path).is_absolute())
        normalised[ps.name] = (std::filesystem::path(base_dir) / path).lexically_normal().string();
    }
  }
};

// The passes of validate_graph, in order. Each pass reads what the earlier ones resolved (stage
// infos, ports) and skips the stages marked broken, whose later checks would only repeat an error.
class GraphValidator {
 public:
  GraphValidator(const GraphSpec& spec, const StageRegistry& registry) : spec_(spec), registry_(registry) {}

  std::vector<Error> run(ValidatedGraph* out, ValidationScope scope) {
    check_stage_ids();
    check_inputs_and_outputs();
    check_settings();
    resolve_stage_types();
    for (auto& s : spec_.stages) check_params(s);
    if (scope == ValidationScope::StagesOnly) return std::move(errors_);
    resolve_ports();
    for (const auto& s : spec_.stages) check_wiring(s);
    check_port_types();
    check_cycles();
    for (const auto& o : spec_.outputs) check_output(o);
    if (errors_.empty() && out) {
      out->spec = std::move(spec_);
      out->ports = std::move(ports_);
      out->infos = std::move(infos_);
      out->registry = &registry_;
    }
    return std::move(errors_);
  }

 private:
  void fail(const std::string& code, const std::string& message, const SourceLocation& where) {
    errors_.push_back(config_error(code, message, where));
  }

  // Lookups by name through an index built once, so that validation stays linear in the graph's size
  // (GraphSpec::stage searches the list).
  const StageNode* stage_named(const std::string& id) {
    if (stage_index_.empty())
      for (const auto& s : spec_.stages) stage_index_.emplace(s.id, &s);
    auto it = stage_index_.find(id);
    return it == stage_index_.end() ? nullptr : it->second;
  }
  const GraphInput* input_named(const std::string& name) {
    if (input_index_.empty())
      for (const auto& i : spec_.inputs) input_index_.emplace(i.name, &i);
    auto it = input_index_.find(name);
    return it == input_index_.end() ? nullptr : it->second;
  }

  std::vector<std::string> stage_ids() const {
    return names_of(spec_.stages, [](const StageNode& s) { return s.id; });
  }

  // Pass 1: structure.
  void check_stage_ids() {
    std::set<std::string> seen;
    for (const auto& s : spec_.stages) {
      if (!seen.insert(s.id).second) {
        fail("duplicate_stage_id", "stage id '" + s.id + "' is used more than once", s.where);
        broken_.insert(s.id);
      }
      if (s.id == "inputs")
        fail("duplicate_stage_id", "'inputs' is reserved for graph inputs; rename the stage", s.where);
    }
  }

  void check_inputs_and_outputs() {
    std::set<std::string> inputs, outputs;
    for (const auto& i : spec_.inputs) {
      if (!inputs.insert(i.name).second)
        fail("duplicate_input", "graph input '" + i.name + "' is declared more than once", i.where);
      if (i.default_value && i.default_value->is_object())
        fail("bad_value", "default of graph input '" + i.name + "' must be a scalar", i.where);
    }
    for (const auto& o : spec_.outputs)
      if (!outputs.insert(o.name).second)
        fail("duplicate_output", "output '" + o.name + "' is declared more than once", o.where);
  }

  // Where a top-level setting was written; a graph built in code has no location.
  SourceLocation setting_where(const std::string& key) const {
    auto it = spec_.setting_where.find(key);
    return it != spec_.setting_where.end() ? it->second : SourceLocation{spec_.file, 0, 0};
  }

  void check_settings() {
    const std::string& d = spec_.device;
    const bool device_ok = d == "cpu" || d == "cuda" ||
                           (d.rfind("cuda:", 0) == 0 && d.size() > 5 && std::all_of(d.begin() + 5, d.end(), ::isdigit));
    if (!device_ok) fail("bad_setting", "device '" + d + "' is not cpu, cuda or cuda:N", setting_where("device"));
    if (spec_.dtype != "float32" && spec_.dtype != "float16" && spec_.dtype != "bfloat16")
      fail("bad_setting", "dtype '" + spec_.dtype + "' is not float32, float16 or bfloat16", setting_where("dtype"));
    if (spec_.workers < 1) fail("bad_setting", "workers must be at least 1", setting_where("workers"));
    if (spec_.threads < 0) fail("bad_setting", "threads must be 0 (all cores) or more", setting_where("threads"));
    if (spec_.cache_mb < 0 || spec_.cache_mb > (int64_t{1} << 30))
      fail("bad_setting", "cache_mb must be between 0 (keep nothing) and 2^30", setting_where("cache_mb"));
  }

  // A stage computes in the graph's dtype or says it cannot; LibTorch's CPU float16 kernels are incomplete.
  void check_dtype(const StageNode& s, const StageInfo& info) {
    if (info.dtypes.empty()) return;
    const auto& allowed = info.dtypes;
    std::string list;
    for (const auto& d : allowed) list += (list.empty() ? "" : ", ") + d;
    if (std::find(allowed.begin(), allowed.end(), spec_.dtype) == allowed.end()) {
      fail("unsupported_dtype",
           "stage '" + s.id + "' (" + s.type + ") computes in " + list + ", not in dtype " + spec_.dtype,
           setting_where("dtype"));
    } else if (spec_.dtype == "float16" && spec_.device == "cpu") {
      fail("unsupported_dtype",
           "stage '" + s.id + "' (" + s.type + "): float16 needs a CUDA device; on the CPU use bfloat16 or float32",
           setting_where("dtype"));
    }
  }

  // Pass 2: stage types.
  void resolve_stage_types() {
    for (const auto& s : spec_.stages) {
      const StageInfo* info = registry_.find(s.type);
      if (!info) {
        fail("unknown_stage_type",
             "stage '" + s.id + "' has unknown type '" + s.type + "'" + did_you_mean(s.type, registry_.types()) +
                 "; `a2a stages` lists them",
             s.type_where.known() ? s.type_where : s.where);
        broken_.insert(s.id);
        continue;
      }
      if (!broken_.count(s.id)) infos_[s.id] = info;
    }
  }

  // Pass 3: parameters, checked and filled with defaults; Path parameters resolved.
  void check_params(StageNode& s) {
    auto it = infos_.find(s.id);
    if (it == infos_.end() || broken_.count(s.id)) return;
    if (!ParamPass{errors_, spec_.base_dir}.normalise(s, *it->second)) broken_.insert(s.id);
    check_dtype(s, *it->second);
  }

  // Pass 4: ports and wiring.
  void resolve_ports() {
    for (const auto& s : spec_.stages) {
      if (!infos_.count(s.id) || broken_.count(s.id)) continue;
      try {
        ports_[s.id] = infos_.at(s.id)->resolve_ports(s.params);
      } catch (const Error& e) {
        fail("bad_ports", "stage '" + s.id + "': " + e.message(), s.where);
        broken_.insert(s.id);
      }
    }
  }

  void check_wiring(const StageNode& s) {
    if (!ports_.count(s.id)) return;
    const StagePorts& sp = ports_.at(s.id);
    std::set<std::string> wired;
    for (const auto& w : s.inputs) {
      if (!sp.input(w.port)) {
        const auto names = names_of(sp.inputs, [](const PortSpec& p) { return p.name; });
        fail("unknown_port",
             "stage '" + s.id + "' (" + s.type + ") has no input port '" + w.port + "'" + did_you_mean(w.port, names),
             w.where);
        continue;
      }
      if (!wired.insert(w.port).second) {
        fail("duplicate_wiring", "input port '" + w.port + "' of stage '" + s.id + "' is wired twice", w.where);
        continue;
      }
      if (auto type = source_type(s, w)) wired_types_[s.id][w.port] = *type;
    }
    for (const auto& p : sp.inputs) {
      if (p.required && !wired.count(p.name))
        fail("required_input_unwired",
             "required input '" + p.name + "' (" + value_type_name(p.type) + ") of stage '" + s.id + "' is not wired",
             s.where);
    }
  }

  // The type a wire's source gives, or nullopt (with an error unless the source stage has one).
  std::optional<ValueType> source_type(const StageNode& s, const Wire& w) {
    auto ref = parse_source(w.source);
    if (!ref) {
      fail("bad_source", "'" + w.source + "' is not a source; write inputs.NAME or STAGE.PORT", w.where);
      return std::nullopt;
    }
    if (ref->graph_input) {
      if (const GraphInput* gi = input_named(ref->node)) return gi->type;
      const auto names = names_of(spec_.inputs, [](const GraphInput& i) { return i.name; });
      fail("unknown_source",
           "graph input '" + ref->node + "' is not declared under inputs:" + did_you_mean(ref->node, names), w.where);
      return std::nullopt;
    }
    if (!stage_named(ref->node)) {
      fail("unknown_source",
           "input '" + w.port + "' of stage '" + s.id + "' reads from unknown stage '" + ref->node + "'" +
               did_you_mean(ref->node, stage_ids()),
           w.where);
      return std::nullopt;
    }
    if (!ports_.count(ref->node)) return std::nullopt;  // that stage already has an error
    if (const PortSpec* src = ports_.at(ref->node).output(ref->port)) return src->type;
    const auto outs = names_of(ports_.at(ref->node).outputs, [](const PortSpec& p) { return p.name; });
    fail("unknown_source",
         "stage '" + ref->node + "' has no output port '" + ref->port + "'" + did_you_mean(ref->port, outs), w.where);
    return std::nullopt;
  }

  // Pass 5: port types.
  void check_port_types() {
    for (const auto& s : spec_.stages) {
      if (!ports_.count(s.id)) continue;
      for (const auto& w : s.inputs) {
        auto st = wired_types_[s.id].find(w.port);
        if (st == wired_types_[s.id].end()) continue;
        const PortSpec* dest = ports_.at(s.id).input(w.port);
        if (!port_types_compatible(st->second, dest->type))
          fail("port_type_mismatch",
               "input '" + w.port + "' of stage '" + s.id + "' takes " + value_type_name(dest->type) + " but '" +
                   w.source + "' gives " + value_type_name(st->second),
               w.where);
      }
    }
  }

  // Pass 6: cycles, each reported once, its stages named in data-flow order.
  void check_cycles() {
    for (const auto& s : spec_.stages) {
      for (const auto& w : s.inputs) {
        auto ref = parse_source(w.source);
        if (ref && !ref->graph_input && stage_named(ref->node)) reads_from_[s.id].push_back(ref->node);
      }
    }
    for (const auto& s : spec_.stages)
      if (visit_state_[s.id] == 0) visit(s.id);
  }

  void visit(const std::string& id) {
    visit_state_[id] = 1;
    stack_.push_back(id);
    for (const auto& d : reads_from_[id]) {
      if (visit_state_[d] == 1)
        report_cycle(d);
      else if (visit_state_[d] == 0)
        visit(d);
    }
    stack_.pop_back();
    visit_state_[id] = 2;
  }

  void report_cycle(const std::string& closing) {
    // The stack holds each stage before the one it reads from; name them in data-flow order.
    auto start = std::find(stack_.begin(), stack_.end(), closing);
    std::vector<std::string> cycle(start, stack_.end());
    std::reverse(cycle.begin() + 1, cycle.end());
    std::vector<std::string> key = cycle;
    std::sort(key.begin(), key.end());
    std::string key_str;
    for (const auto& k : key) key_str += k + ",";
    if (!reported_cycles_.insert(key_str).second) return;
    std::string names;
    for (const auto& c : cycle) names += c + " -> ";
    fail("cycle", "the stages form a cycle: " + names + closing, stage_named(closing)->where);
  }

  // Pass 7: outputs.
  void check_output(const GraphOutput& o) {
    check_output_source(o);
    if (!o.save.empty() && save_path_escapes(o.save))
      fail("save_path_escapes",
           "output '" + o.name + "' would be saved to '" + o.save +
               "', outside the output directory; use a relative path inside it",
           o.where);
    check_save_format(o);
  }

  // An image saved as .mp4 fails here, before the run, not after the outputs before it were written.
  void check_save_format(const GraphOutput& o) {
    const auto& problem_of = value_file_codec().save_problem;
    if (o.save.empty() || !problem_of) return;
    std::optional<ValueType> type;
    auto ref = parse_source(o.source);
    if (ref && ref->graph_input) {
      if (const GraphInput* gi = input_named(ref->node)) type = gi->type;
    } else if (ref && ports_.count(ref->node)) {
      if (const PortSpec* port = ports_.at(ref->node).output(ref->port)) type = port->type;
    }
    if (!type) return;
    const std::string problem = problem_of(*type, o.save);
    if (!problem.empty()) fail("save_type_mismatch", "output '" + o.name + "': " + problem, o.where);
  }

  void check_output_source(const GraphOutput& o) {
    auto ref = parse_source(o.source);
    if (!ref) {
      fail("unknown_output_source", "output '" + o.name + "' reads from '" + o.source + "'; write STAGE.PORT", o.where);
    } else if (ref->graph_input) {
      if (!input_named(ref->node))
        fail("unknown_output_source", "output '" + o.name + "' reads from undeclared graph input '" + ref->node + "'",
             o.where);
    } else if (!stage_named(ref->node)) {
      fail(
          "unknown_output_source",
          "output '" + o.name + "' reads from unknown stage '" + ref->node + "'" + did_you_mean(ref->node, stage_ids()),
          o.where);
    } else if (ports_.count(ref->node) && !ports_.at(ref->node).output(ref->port)) {
      const auto outs = names_of(ports_.at(ref->node).outputs, [](const PortSpec& p) { return p.name; });
      fail("unknown_output_source",
           "output '" + o.name + "': stage '" + ref->node + "' has no output port '" + ref->port + "'" +
               did_you_mean(ref->port, outs),
           o.where);
    }
  }

  GraphSpec spec_;
  const StageRegistry& registry_;
  std::vector<Error> errors_;
  std::set<std::string> broken_;
  std::map<std::string, const StageInfo*> infos_;
  std::map<std::string, StagePorts> ports_;
  std::map<std::string, std::map<std::string, ValueType>> wired_types_;  // stage -> port -> source type
  std::map<std::string, std::vector<std::string>> reads_from_;
  std::map<std::string, int> visit_state_;  // 0 new, 1 on the stack, 2 done
  std::vector<std::string> stack_;
  std::set<std::string> reported_cycles_;
  std::map<std::string, const StageNode*> stage_index_;  // the first stage of each id
  std::map<std::string, const GraphInput*> input_index_;
};

}  // namespace

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
  static const std::vector<std::string> codes = {"yaml_syntax",
                                                 "unknown_key",
                                                 "duplicate_key",
                                                 "missing_key",
                                                 "bad_value",
                                                 "duplicate_stage_id",
                                                 "duplicate_input",
                                                 "duplicate_output",
                                                 "bad_setting",
                                                 "unknown_stage_type",
                                                 "unknown_param",
                                                 "param_type",
                                                 "param_out_of_range",
                                                 "param_not_allowed",
                                                 "missing_param",
                                                 "unknown_port",
                                                 "bad_source",
                                                 "unknown_source",
                                                 "required_input_unwired",
                                                 "bad_ports",
                                                 "port_type_mismatch",
                                                 "cycle",
                                                 "unknown_output_source",
                                                 "save_path_escapes",
                                                 "duplicate_wiring",
                                                 "path_not_found",
                                                 "too_large",
                                                 "save_type_mismatch",
                                                 "unsupported_dtype"};
  return codes;
}

std::vector<Error> validate_graph(const GraphSpec& spec, const StageRegistry& registry, ValidatedGraph* out,
                                  ValidationScope scope) {
  return GraphValidator(spec, registry).run(out, scope);
}

Json validate_stage_params(const StageInfo& info, const std::string& stage_id, const Json& params,
                           const std::string& base_dir) {
  std::vector<Error> errors;
  StageNode node;
  node.id = stage_id;
  node.type = info.type;
  node.params = params.is_null() ? Json::object() : params;
  ParamPass{errors, base_dir}.normalise(node, info);
  if (!errors.empty()) throw ErrorList(std::move(errors));
  return node.params;
}

ValidatedGraph validate_or_throw(const GraphSpec& spec, const StageRegistry& registry) {
  ValidatedGraph graph;
  auto errors = validate_graph(spec, registry, &graph);
  if (!errors.empty()) throw ErrorList(std::move(errors));
  return graph;
}

}  // namespace a2a
