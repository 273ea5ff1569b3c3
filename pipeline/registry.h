#pragma once
// Maps stage type names to their schema and factory.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/stage.h"

namespace a2a {

// A problem that a stage's own rule finds in its parameters: the parameter it is about (its location is
// reported), a stable code and the message.
struct ParamProblem {
  std::string param;
  std::string code;
  std::string message;
};

struct StageInfo {
  std::string type;
  std::string description;
  // The dtypes the stage computes in; empty = the stage holds no model and dtype does not apply.
  std::vector<std::string> dtypes;
  std::vector<ParamSpec> params;
  // Fixed ports; used when ports_for is empty.
  StagePorts ports;
  // Ports derived from the (validated, defaults-filled) parameters.
  std::function<StagePorts(const Json& params)> ports_for;
  std::function<std::unique_ptr<Stage>()> create;
  // Rules across parameters that the schema cannot state (a width that must be a multiple of the VAE's
  // factor, a layer index within the model's depth), run by the parameter pass on the checked,
  // defaults-filled parameters with Path parameters resolved. Empty = none.
  std::function<std::vector<ParamProblem>(const Json& params)> check_params;

  StagePorts resolve_ports(const Json& params) const { return ports_for ? ports_for(params) : ports; }
  const ParamSpec* param(const std::string& name) const;
};

class StageRegistry {
 public:
  static StageRegistry& global();
  // An empty registry of its own, for code that keeps its stage set apart from the global one.
  StageRegistry();

  // Throws a2a::Error(code "duplicate_stage_type") when the name is taken.
  void add(StageInfo info);
  const StageInfo* find(const std::string& type) const;
  std::vector<std::string> types() const;  // sorted
  bool remove(const std::string& type);    // for tests and plugin unloading
  // Registrations made by static registrars that failed (a duplicate name, say); cleared on read.
  // The plugin loader reports these after loading a library.
  std::vector<std::string> take_registration_errors();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  friend struct StageRegistrar;
};

// Built-in stages register at load time:
//   A2A_REGISTER_STAGE(my_stage_info);   where my_stage_info() returns a StageInfo
// User code may call StageRegistry::global().add(...) at any time before building a pipeline.
struct StageRegistrar {
  explicit StageRegistrar(StageInfo (*make)());
};
#define A2A_CONCAT_INNER(a, b) a##b
#define A2A_CONCAT(a, b) A2A_CONCAT_INNER(a, b)
#define A2A_REGISTER_STAGE(make_info) \
  static ::a2a::StageRegistrar A2A_CONCAT(a2a_stage_registrar_, __COUNTER__)(make_info)

// Convenience builders for stage schemas.
PortSpec in_port(std::string name, ValueType type, std::string doc = "");
PortSpec optional_in_port(std::string name, ValueType type, std::string doc = "");
PortSpec out_port(std::string name, ValueType type, std::string doc = "");
ParamSpec param_spec(std::string name, ParamType type, Json default_value, std::string doc = "");
ParamSpec ranged_param(std::string name, ParamType type, Json default_value, std::optional<double> min,
                       std::optional<double> max, std::string doc = "");
ParamSpec choice_param(std::string name, std::string default_value, std::vector<std::string> choices,
                       std::string doc = "");

}  // namespace a2a
