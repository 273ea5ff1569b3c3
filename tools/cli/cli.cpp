#include "tools/cli/cli.h"

#include <unistd.h>

#include <cctype>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "base/suggest.h"
#include "pipeline/config_loader.h"
#include "pipeline/input_arg.h"
#include "pipeline/pipeline.h"
#include "pipeline/plugin_loader.h"
#include "pipeline/registry.h"
#include "pipeline/runtime.h"
#include "stages/media_file.h"
#include "tools/cli/output_staging.h"
#include "tools/cli/progress.h"
#include "weights/checkpoint_inspect.h"

namespace a2a::cli {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitConfig = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInternal = 3;
constexpr int kExitInterrupted = 130;

const char* kMainHelp = R"(a2a - any-to-any generation pipelines

usage: a2a <command> [options]

commands:
  run CONFIG        run a pipeline and save its outputs
  validate CONFIG   check a pipeline config and report every error
  graph CONFIG      print the pipeline graph (DOT or Mermaid)
  stages [TYPE]     list registered stage types, their ports and parameters
  inspect PATH      list the tensors, totals and layout of a checkpoint file or folder

`a2a <command> --help` shows a command's options.
exit codes: 0 ok, 1 config or input error, 2 usage error, 3 internal error, 130 interrupted
)";

const char* kRunHelp = R"(usage: a2a run CONFIG [options]

options:
  --set KEY=VALUE      override a scalar of the config (stages.ID.PARAM=V, inputs.NAME=V, seed=V)
  --input NAME=VALUE   give a graph input: text, or a path for image/audio/video inputs
  --output NAME        produce only this output (repeatable; default: every output)
  --output-dir DIR     where saved outputs go (default: out)
  --threads N          LibTorch intra-op threads (default: the config's, else all cores)
  --workers N          stages run concurrently (default: the config's, else 1)
  --cache-mb N         execution cache budget in MiB (default: the config's, else 1024)
  --plugin PATH        load a plugin library before validating (repeatable)
  --quiet              no progress and no timing table
)";

const char* kValidateHelp = R"(usage: a2a validate CONFIG [--set KEY=VALUE]... [--plugin PATH]...

Checks the config in ordered passes and prints every error as FILE:LINE:COL: error[CODE]: message.
)";

const char* kGraphHelp = R"(usage: a2a graph CONFIG [--format dot|mermaid] [--set KEY=VALUE]... [--plugin PATH]...
)";

const char* kStagesHelp = R"(usage: a2a stages [TYPE] [--json] [--plugin PATH]...

Lists every registered stage type with its ports and parameters.
)";

const char* kInspectHelp = R"(usage: a2a inspect PATH [--json] [--variant fp16]

Lists a safetensors file, sharded checkpoint, transformers folder or diffusers folder: tensors
(name, dtype, shape), totals, metadata and the detected layout. Pickle files are refused.
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;
  std::set<std::string> flags;
  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::vector<std::string> all(const std::string& name) const {
    auto it = options.find(name);
    return it == options.end() ? std::vector<std::string>{} : it->second;
  }
  std::optional<std::string> one(const std::string& name) const {
    auto v = all(name);
    if (v.empty()) return std::nullopt;
    return v.back();
  }
};

Args parse_args(int argc, char** argv, int start, const std::set<std::string>& valued,
                const std::set<std::string>& flags) {
  Args args;
  for (int i = start; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos && valued.count(name.substr(0, eq))) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      if (flags.count(name)) {
        args.flags.insert(name);
      } else if (valued.count(name)) {
        if (!inline_value) {
          if (i + 1 >= argc) throw UsageError("--" + name + " needs a value");
          value = argv[++i];
        }
        args.options[name].push_back(value);
      } else {
        throw UsageError("unknown option '" + a + "'");
      }
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

int parse_count(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    int v = std::stoi(text, &used);
    if (used != text.size() || v < 0) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw UsageError(what + " needs a non-negative integer, got '" + text + "'");
  }
}

// Loads the YAML and the plugins it (and the command line) names, then validates.
ValidatedGraph load_validated(const std::string& path, const Args& args) {
  GraphBuilder builder = load_graph_yaml(path, args.all("set"));
  for (const auto& plugin : builder.spec().plugins) {
    std::filesystem::path p(plugin);
    if (p.is_relative()) p = std::filesystem::path(builder.spec().base_dir) / p;
    load_plugin(p.string());
  }
  for (const auto& plugin : args.all("plugin")) load_plugin(plugin);
  if (auto threads = args.one("threads")) builder.threads(parse_count(*threads, "--threads"));
  if (auto workers = args.one("workers")) builder.workers(parse_count(*workers, "--workers"));
  if (auto megabytes = args.one("cache-mb")) builder.cache_mb(parse_count(*megabytes, "--cache-mb"));
  return builder.build();
}

CancellationToken* g_cancel = nullptr;
volatile std::sig_atomic_t g_interrupts = 0;

// The first Ctrl-C cancels the run; a second one, SIGTERM or SIGHUP end the process at once, after
// removing the staging folder so that no partial output is left.
extern "C" void on_sigint(int) {
  g_interrupts = g_interrupts + 1;
  if (g_interrupts > 1) {
    remove_staging_from_signal_handler();
    _exit(kExitInterrupted);
  }
  if (g_cancel) g_cancel->cancel();
}

extern "C" void on_terminate(int signal) {
  remove_staging_from_signal_handler();
  _exit(128 + signal);
}

void install_signal_handlers() {
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_handler = on_sigint;
  sigaction(SIGINT, &action, nullptr);
  action.sa_handler = on_terminate;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
}

// --output-dir names a folder, existing or not; a file there is a mistake, reported before anything runs.
std::string output_dir_of(const Args& args) {
  const std::string dir = args.one("output-dir").value_or("out");
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw UsageError("--output-dir '" + dir + "' is a file, not a folder");
  return dir;
}

// Saves every selected output into a staging folder, publishes them together once all are written, then
// reports each one (text replies go to stdout).
void report_outputs(const GraphSpec& spec, const RunResult& result, const std::string& out_dir,
                    const std::function<bool(const GraphOutput&)>& selected) {
  std::map<std::string, std::vector<SavedFile>> saved;
  std::unique_ptr<OutputStaging> staging;
  std::vector<std::string> written;
  for (const auto& output : spec.outputs) {
    auto it = result.outputs.find(output.name);
    if (!selected(output) || output.save.empty() || it == result.outputs.end()) continue;
    if (!staging) staging = std::make_unique<OutputStaging>(out_dir);
    const std::string staged = staging->staged_path(output.save);
    try {
      saved[output.name] = save_value(it->second, staged);
    } catch (const Error& e) {  // name the file the user asked for, not its staging place
      std::string message = e.message();
      const std::string target = (std::filesystem::path(out_dir) / output.save).string();
      for (size_t at = message.find(staged); at != std::string::npos; at = message.find(staged, at + target.size()))
        message.replace(at, staged.size(), target);
      throw Error(e.kind(), e.code(), message, e.where());
    }
    for (const auto& file : saved[output.name]) written.push_back(file.path);
  }
  const std::vector<std::string> published = staging ? staging->publish(written) : std::vector<std::string>{};
  size_t next = 0;
  for (const auto& output : spec.outputs) {
    if (!selected(output)) continue;
    auto it = result.outputs.find(output.name);
    if (it == result.outputs.end()) {
      std::cerr << "output " << output.name << ": absent (its stage was skipped)\n";
    } else if (!output.save.empty()) {
      for (const auto& file : saved[output.name]) {
        std::cerr << "output " << output.name << ": " << published[next++] << " (" << file.format << ")";
        if (!file.note.empty()) std::cerr << " - " << file.note;
        std::cerr << "\n";
      }
    } else if (it->second.type() == ValueType::Text) {
      std::cout << it->second.text() << "\n";
    } else {
      std::cerr << "output " << output.name << ": " << it->second.describe() << "\n";
    }
  }
}

// A model stage given no model builds its tiny preset; the timing table says so beside the stage.
bool builds_tiny_preset(const StageNode& node, const StageInfo* info) {
  if (!info || !node.params.contains("model") || node.params["model"] != "") return false;
  for (const auto& spec : info->params)
    if (spec.name.rfind("tiny_", 0) == 0) return true;
  return false;
}

void mark_tiny_presets(const ValidatedGraph& graph, RunResult& result) {
  for (auto& record : result.stages) {
    if (record.status == StageRecord::Status::Skipped || !record.note.empty()) continue;
    for (const auto& node : graph.spec.stages) {
      auto info = graph.infos.find(node.id);
      if (node.id == record.id && builds_tiny_preset(node, info == graph.infos.end() ? nullptr : info->second))
        record.note = "tiny preset: seeded random weights (no model given)";
    }
  }
}

int cmd_run(const Args& args) {
  if (args.positional.size() != 1) throw UsageError("run needs exactly one CONFIG file");
  const std::string out_dir = output_dir_of(args);
  ValidatedGraph graph = load_validated(args.positional[0], args);
  initialize_runtime({graph.spec.threads, true});

  Pipeline pipeline(std::move(graph));
  RunRequest request;
  for (const auto& arg : args.all("input")) {
    const InputArg given = parse_input_arg(arg, pipeline.graph().spec);
    request.inputs.emplace(given.input->name, given.input->type == ValueType::Text
                                                  ? Value::text(given.value)
                                                  : load_media_value(given.value, given.input->type));
  }
  request.outputs = args.all("output");

  const bool quiet = args.has("quiet");
  ProgressView view(::isatty(STDERR_FILENO) != 0, quiet);
  pipeline.set_event_sink([&](const StageEvent& e) { view.on_event(e); });

  auto selected = [&](const GraphOutput& output) {
    return request.outputs.empty() ||
           std::find(request.outputs.begin(), request.outputs.end(), output.name) != request.outputs.end();
  };
  // A symbolic link on the way to a saved output is refused before the run spends any time.
  for (const auto& output : pipeline.graph().spec.outputs)
    if (selected(output) && !output.save.empty()) checked_output_path(out_dir, output.save);

  g_cancel = &pipeline.cancellation();
  install_signal_handlers();
  RunResult result = pipeline.run(request);
  view.finish_line();
  g_cancel = nullptr;
  report_outputs(pipeline.graph().spec, result, out_dir, selected);
  mark_tiny_presets(pipeline.graph(), result);
  if (!quiet) std::cerr << view.timing_table(result);
  return kExitOk;
}

int cmd_validate(const Args& args) {
  if (args.positional.size() != 1) throw UsageError("validate needs exactly one CONFIG file");
  ValidatedGraph graph = load_validated(args.positional[0], args);
  std::cout << args.positional[0] << ": ok (" << graph.spec.stages.size() << " stages, " << graph.spec.outputs.size()
            << " outputs)\n";
  return kExitOk;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

int cmd_graph(const Args& args) {
  if (args.positional.size() != 1) throw UsageError("graph needs exactly one CONFIG file");
  std::string format = args.one("format").value_or("dot");
  if (format != "dot" && format != "mermaid") throw UsageError("--format is dot or mermaid, got '" + format + "'");
  ValidatedGraph graph = load_validated(args.positional[0], args);
  const GraphSpec& spec = graph.spec;
  std::ostringstream os;
  auto node_name = [](const std::string& source) {
    auto ref = parse_source(source);
    return ref->graph_input ? "in_" + ref->node : ref->node;
  };
  if (format == "dot") {
    os << "digraph " << quoted(spec.name.empty() ? "pipeline" : spec.name) << " {\n  rankdir=LR;\n";
    for (const auto& i : spec.inputs) {
      os << "  " << quoted("in_" + i.name)
         << " [shape=ellipse, label=" << quoted(i.name + "\\n" + value_type_name(i.type)) << "];\n";
    }
    for (const auto& s : spec.stages)
      os << "  " << quoted(s.id) << " [shape=box, label=" << quoted(s.id + "\\n" + s.type) << "];\n";
    for (const auto& o : spec.outputs)
      os << "  " << quoted("out_" + o.name) << " [shape=note, label=" << quoted(o.name) << "];\n";
    for (const auto& s : spec.stages) {
      for (const auto& w : s.inputs) {
        auto ref = parse_source(w.source);
        os << "  " << quoted(node_name(w.source)) << " -> " << quoted(s.id)
           << " [label=" << quoted((ref->graph_input ? "" : ref->port + " -> ") + w.port) << "];\n";
      }
    }
    for (const auto& o : spec.outputs) {
      os << "  " << quoted(node_name(o.source)) << " -> " << quoted("out_" + o.name) << ";\n";
    }
    os << "}\n";
  } else {
    auto id = [](const std::string& s) {
      std::string out;
      for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return out;
    };
    os << "flowchart LR\n";
    for (const auto& i : spec.inputs)
      os << "  " << id("in_" + i.name) << "([" << i.name << ": " << value_type_name(i.type) << "])\n";
    for (const auto& s : spec.stages) os << "  " << id(s.id) << "[" << s.id << "<br/>" << s.type << "]\n";
    for (const auto& o : spec.outputs) os << "  " << id("out_" + o.name) << "[/" << o.name << "/]\n";
    for (const auto& s : spec.stages) {
      for (const auto& w : s.inputs) {
        os << "  " << id(node_name(w.source)) << " -->|" << w.port << "| " << id(s.id) << "\n";
      }
    }
    for (const auto& o : spec.outputs) os << "  " << id(node_name(o.source)) << " --> " << id("out_" + o.name) << "\n";
  }
  std::cout << os.str();
  return kExitOk;
}

Json stage_json(const StageInfo& info) {
  Json j;
  j["type"] = info.type;
  j["description"] = info.description;
  Json params = Json::array();
  for (const auto& p : info.params) {
    Json pj = {{"name", p.name},
               {"type", param_type_name(p.type)},
               {"default", p.default_value},
               {"doc", p.doc},
               {"required", p.required}};
    if (p.min) pj["min"] = *p.min;
    if (p.max) pj["max"] = *p.max;
    if (!p.choices.empty()) pj["choices"] = p.choices;
    params.push_back(pj);
  }
  j["params"] = params;
  auto ports_json = [](const std::vector<PortSpec>& ports) {
    Json arr = Json::array();
    for (const auto& p : ports) {
      arr.push_back({{"name", p.name}, {"type", value_type_name(p.type)}, {"required", p.required}, {"doc", p.doc}});
    }
    return arr;
  };
  j["dynamic_ports"] = static_cast<bool>(info.ports_for);
  // Ports for the default parameters; stages with dynamic ports may have others.
  Json defaults = Json::object();
  for (const auto& p : info.params)
    if (!p.default_value.is_null()) defaults[p.name] = p.default_value;
  try {
    StagePorts ports = info.resolve_ports(defaults);
    j["inputs"] = ports_json(ports.inputs);
    j["outputs"] = ports_json(ports.outputs);
  } catch (const std::exception&) {
    j["inputs"] = Json::array();
    j["outputs"] = Json::array();
  }
  return j;
}

int cmd_stages(const Args& args) {
  for (const auto& plugin : args.all("plugin")) load_plugin(plugin);
  auto& registry = StageRegistry::global();
  std::vector<std::string> types = registry.types();
  if (!args.positional.empty()) {
    types.clear();
    for (const auto& t : args.positional) {
      if (!registry.find(t)) {
        throw Error(ErrorKind::Config, "unknown_stage_type",
                    "unknown stage type '" + t + "'" + did_you_mean(t, registry.types()));
      }
      types.push_back(t);
    }
  }
  if (args.has("json")) {
    Json all = Json::array();
    for (const auto& t : types) all.push_back(stage_json(*registry.find(t)));
    std::cout << all.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& t : types) {
    Json j = stage_json(*registry.find(t));
    std::cout << t << "  -  " << j["description"].get<std::string>() << "\n";
    auto print_ports = [](const char* label, const Json& ports) {
      if (ports.empty()) return;
      std::cout << "  " << label << ":\n";
      for (const auto& p : ports) {
        std::cout << "    " << p["name"].get<std::string>() << ": " << p["type"].get<std::string>();
        if (std::string(label) == "inputs" && !p["required"].get<bool>()) std::cout << " (optional)";
        if (!p["doc"].get<std::string>().empty()) std::cout << "  " << p["doc"].get<std::string>();
        std::cout << "\n";
      }
    };
    print_ports("inputs", j["inputs"]);
    print_ports("outputs", j["outputs"]);
    if (j["dynamic_ports"].get<bool>()) std::cout << "  (ports depend on parameters)\n";
    if (!j["params"].empty()) {
      std::cout << "  params:\n";
      for (const auto& p : j["params"]) {
        std::cout << "    " << p["name"].get<std::string>() << ": " << p["type"].get<std::string>();
        if (p["required"].get<bool>()) {
          std::cout << " (required)";
        } else if (!p["default"].is_null()) {
          std::cout << " = " << p["default"].dump();
        }
        if (p.contains("min") || p.contains("max")) {
          std::cout << " in [" << (p.contains("min") ? p["min"].dump() : "-inf") << ", "
                    << (p.contains("max") ? p["max"].dump() : "inf") << "]";
        }
        if (p.contains("choices")) {
          std::cout << " one of";
          for (const auto& c : p["choices"]) std::cout << " " << c.get<std::string>();
        }
        if (!p["doc"].get<std::string>().empty()) std::cout << "  " << p["doc"].get<std::string>();
        std::cout << "\n";
      }
    }
    std::cout << "\n";
  }
  return kExitOk;
}

int cmd_inspect(const Args& args) {
  if (args.positional.size() != 1) throw UsageError("inspect needs exactly one PATH");
  std::string variant = args.one("variant").value_or("");
  if (args.has("json")) {
    std::cout << inspect_checkpoint_json(args.positional[0], variant).dump(2) << "\n";
  } else {
    std::cout << inspect_checkpoint(args.positional[0], variant);
  }
  return kExitOk;
}

int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Config:
    case ErrorKind::Input: return kExitConfig;
    case ErrorKind::Usage: return kExitUsage;
    case ErrorKind::Cancelled: return kExitInterrupted;
    case ErrorKind::Internal: return kExitInternal;
  }
  return kExitInternal;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kMainHelp;
    return kExitUsage;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kMainHelp;
    return kExitOk;
  }
  struct Command {
    const char* help;
    std::set<std::string> valued;
    std::set<std::string> flags;
    int (*run)(const Args&);
  };
  const std::map<std::string, Command> commands = {
      {"run",
       {kRunHelp,
        {"set", "input", "output", "output-dir", "threads", "workers", "cache-mb", "plugin"},
        {"quiet", "help"},
        cmd_run}},
      {"validate", {kValidateHelp, {"set", "plugin"}, {"help"}, cmd_validate}},
      {"graph", {kGraphHelp, {"set", "plugin", "format"}, {"help"}, cmd_graph}},
      {"stages", {kStagesHelp, {"plugin"}, {"json", "help"}, cmd_stages}},
      {"inspect", {kInspectHelp, {"variant"}, {"json", "help"}, cmd_inspect}},
  };
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::vector<std::string> names;
    for (const auto& kv : commands) names.push_back(kv.first);
    std::cerr << "a2a: unknown command '" << command << "'" << did_you_mean(command, names) << "\n\n" << kMainHelp;
    return kExitUsage;
  }
  try {
    Args args = parse_args(argc, argv, 2, it->second.valued, it->second.flags);
    if (args.has("help")) {
      std::cout << it->second.help;
      return kExitOk;
    }
    return it->second.run(args);
  } catch (const UsageError& e) {
    std::cerr << "a2a " << command << ": " << e.what() << "\n\n" << it->second.help;
    return kExitUsage;
  } catch (const ErrorList& e) {
    std::cerr << e.formatted() << "\n";
    std::cerr << e.errors().size() << (e.errors().size() == 1 ? " error\n" : " errors\n");
    return kExitConfig;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Cancelled) {
      std::cerr << "\ninterrupted; no outputs were written\n";
      return kExitInterrupted;
    }
    std::cerr << e.formatted() << "\n";
    return exit_code_for(e.kind());
  } catch (const std::filesystem::filesystem_error& e) {  // a path the system refuses (too long, no access)
    std::cerr << "error[file_error]: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "a2a: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

}  // namespace a2a::cli
