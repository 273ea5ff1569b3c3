#pragma once
// The stage contract: typed ports and parameters, configured once, run many times.
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/value.h"

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace a2a {

using Json = nlohmann::json;

struct PortSpec {
  std::string name;
  ValueType type = ValueType::Tensor;
  bool required = true;  // inputs only
  std::string doc;
};

enum class ParamType { Bool, Int, Float, String, Path, IntList, FloatList, StringList, Object };
const char* param_type_name(ParamType type);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::String;
  Json default_value;         // null = no default (absent unless given)
  bool required = false;      // must be given in the config
  std::optional<double> min;  // numbers and each list element
  std::optional<double> max;
  std::vector<std::string> choices;  // strings: the allowed values
  bool must_exist = true;            // Path: a non-empty value names an existing file or folder
  std::string doc;
};

// The ports a configured stage exposes. Most stages have fixed ports; some (the LLM's signal
// outputs, TorchScript, projections) derive them from their parameters.
struct StagePorts {
  std::vector<PortSpec> inputs;
  std::vector<PortSpec> outputs;
  const PortSpec* input(const std::string& name) const;
  const PortSpec* output(const std::string& name) const;
};

// Values by port name. An absent port is simply not in the map.
using PortValues = std::map<std::string, Value>;

class CancellationToken {
 public:
  void cancel() { cancelled_.store(true); }
  void reset() { cancelled_.store(false); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // Throws a2a::Error(Cancelled) when cancelled. Stages call this inside long loops.
  void check() const;

 private:
  std::atomic<bool> cancelled_{false};
};

// Loaded modules shared between stages that name the same weights.
class ModuleCache {
 public:
  std::shared_ptr<void> get_or_create(const std::string& key, const std::function<std::shared_ptr<void>()>& create);
  template <class T>
  std::shared_ptr<T> get(const std::string& key, const std::function<std::shared_ptr<T>()>& create) {
    return std::static_pointer_cast<T>(get_or_create(key, [&] { return std::static_pointer_cast<void>(create()); }));
  }
  size_t size() const;
  void clear();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_ = make_impl();
  static std::shared_ptr<Impl> make_impl();
};

// What a stage sees while it is configured.
struct ConfigureContext {
  std::string stage_id;
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1"
  std::string dtype = "float32";
  std::string base_dir;  // the config file's folder: relative paths resolve against it
  ModuleCache* modules = nullptr;
  // The module stored under `key` in the shared cache, created once; without a cache, a new one.
  template <class T, class Create>
  std::shared_ptr<T> shared_module(const std::string& key, Create&& create) const {
    if (!modules) return create();
    return modules->get<T>(key, std::function<std::shared_ptr<T>()>(std::forward<Create>(create)));
  }
  // Resolves a path parameter against base_dir (absolute paths are kept).
  std::string resolve_path(const std::string& path) const;
};

// What a stage sees while it runs.
struct RunContext {
  std::string stage_id;
  uint64_t seed = 0;  // the pipeline seed mixed with the stage id: stable per stage
  const CancellationToken* cancel = nullptr;
  // Progress inside the stage: done of total (for example diffusion steps or tokens).
  std::function<void(int64_t done, int64_t total, const std::string& what)> progress;
  // A line of streamed text (the LLM's tokens as they come).
  std::function<void(const std::string& text)> stream;
  // A warning the stage wants the user to see.
  std::function<void(const std::string& message)> warn;

  void check_cancelled() const {
    if (cancel) cancel->check();
  }
  void report_progress(int64_t done, int64_t total, const std::string& what = "") const {
    if (progress) progress(done, total, what);
  }
  void warning(const std::string& message) const {
    if (warn) warn(message);
  }
};

class Stage {
 public:
  virtual ~Stage() = default;

  // Builds or loads the stage's modules. Called once, before any run.
  virtual void configure(const Json& params, const ConfigureContext& ctx) {
    (void)params;
    (void)ctx;
  }
  // Runs the stage. Inputs hold every present input; outputs hold every produced port.
  virtual PortValues run(const PortValues& inputs, RunContext& ctx) = 0;

  // The LibTorch module behind the stage, for research code (inspect, swap a submodule, train).
  virtual torch::nn::Module* module() { return nullptr; }

  // A stage with side effects or randomness not driven by the run seed returns false.
  virtual bool cacheable() const { return true; }
};

// Reads typed parameters from the validated, defaults-filled params object.
double param_float(const Json& params, const std::string& name);
int64_t param_int(const Json& params, const std::string& name);
bool param_bool(const Json& params, const std::string& name);
std::string param_string(const Json& params, const std::string& name);

// A required input's value or an Internal error (the executor guarantees required inputs).
const Value& input(const PortValues& inputs, const std::string& port);
const Value* optional_input(const PortValues& inputs, const std::string& port);

}  // namespace a2a
