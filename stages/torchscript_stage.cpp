// torchscript: runs one method of a TorchScript module (torch.jit.save / torch::jit::Module::save) as a
// stage. Its ports come from the parameters:
//
//   - id: upscale
//     type: torchscript
//     params:
//       path: models/upscaler.pt
//       method: forward                  # default
//       inputs: {image: image, strength: tensor}
//       outputs: {image: image}
//
// Inputs are passed to the method by argument name (the method's schema names them); arguments that
// are not wired take their TorchScript defaults. The result maps to the outputs: a tensor to the one
// output, a Dict[str, Tensor] by key, a tuple or list in the order of `output_order` (YAML mappings lose
// their order once parsed, so without it the outputs are taken in alphabetical order).
//
// A TorchScript file is code: loading one runs whatever it contains with this process's rights. Use
// only files from a trusted source.
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "nn/dtype.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

struct DeclaredPort {
  std::string name;
  ValueType type;
};

std::vector<DeclaredPort> declared_ports(const Json& params, const std::string& key) {
  std::vector<DeclaredPort> out;
  const Json& ports = params.at(key);
  if (!ports.is_object())
    throw_config_error("bad_ports", "torchscript: '" + key + "' must map port names to value types");
  for (auto it = ports.begin(); it != ports.end(); ++it) {
    if (!it.value().is_string()) {
      throw_config_error("bad_ports", "torchscript: " + key + "." + it.key() + " must be a value type name");
    }
    out.push_back({it.key(), value_type_from_name(it.value().get<std::string>())});
  }
  return out;
}

// Outputs in the order a tuple result fills them.
std::vector<DeclaredPort> ordered_outputs(const Json& params) {
  std::vector<DeclaredPort> outputs = declared_ports(params, "outputs");
  const Json& order = params.at("output_order");
  if (order.is_null() || order.empty()) return outputs;
  std::vector<DeclaredPort> ordered;
  for (const auto& name_json : order) {
    const std::string name = name_json.get<std::string>();
    auto it = std::find_if(outputs.begin(), outputs.end(), [&](const DeclaredPort& p) { return p.name == name; });
    if (it == outputs.end())
      throw_config_error("bad_ports", "torchscript: output_order names '" + name + "', which is not in outputs");
    ordered.push_back(*it);
  }
  if (ordered.size() != outputs.size()) {
    throw_config_error("bad_ports", "torchscript: output_order must list every output exactly once");
  }
  return ordered;
}

StagePorts torchscript_ports(const Json& params) {
  StagePorts ports;
  for (const auto& p : declared_ports(params, "inputs")) {
    if (p.type == ValueType::Text)
      throw_config_error("bad_ports",
                         "torchscript: input '" + p.name + "' cannot be text: TorchScript methods take tensors");
    ports.inputs.push_back(in_port(p.name, p.type));
  }
  for (const auto& p : ordered_outputs(params)) {
    if (p.type == ValueType::Text)
      throw_config_error("bad_ports", "torchscript: output '" + p.name + "' cannot be text");
    ports.outputs.push_back(out_port(p.name, p.type));
  }
  if (ports.outputs.empty()) throw_config_error("bad_ports", "torchscript: declare at least one output");
  return ports;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// Casts the floating-point parameters and buffers in place; jit::Module::to(dtype) would cast integer
// buffers too.
void cast_script_module(torch::jit::Module& module, at::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  auto cast = [dtype](at::Tensor t) {
    if (t.is_floating_point() && t.scalar_type() != dtype) t.set_data(t.to(dtype));
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) cast(p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) cast(b.value);
}

class TorchScriptStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    path_ = ctx.resolve_path(param_string(params, "path"));
    method_name_ = param_string(params, "method");
    inputs_ = declared_ports(params, "inputs");
    outputs_ = ordered_outputs(params);
    sample_rate_ = param_int(params, "sample_rate");
    fps_ = param_float(params, "fps");
    device_ = torch::Device(ctx.device);
    dtype_ = dtype_from_name(ctx.dtype);

    std::error_code ec;
    if (!fs::is_regular_file(path_, ec))
      throw_input_error("file_not_found", "torchscript: file '" + path_ + "' does not exist");
    auto load = [&] {
      try {
        auto m = std::make_shared<torch::jit::Module>(torch::jit::load(path_, device_));
        cast_script_module(*m, dtype_);
        m->eval();
        return m;
      } catch (const c10::Error& e) {
        throw_input_error("bad_torchscript", "torchscript: '" + path_ + "' is not a loadable TorchScript file: " +
                                                 first_line(e.what_without_backtrace()));
      }
    };
    module_ = ctx.shared_module<torch::jit::Module>("torchscript:" + ctx.device + ":" + ctx.dtype + ":" + path_, load);

    auto method = module_->find_method(method_name_);
    if (!method) {
      std::string names;
      for (const auto& m : module_->get_methods()) names += (names.empty() ? "" : ", ") + m.name();
      throw_input_error("method_not_found", "torchscript: '" + path_ + "' has no method '" + method_name_ +
                                                "' (it has: " + (names.empty() ? "none" : names) + ")");
    }
    // Match declared inputs to the method's arguments by name; argument 0 is `self`.
    const auto& arguments = method->function().getSchema().arguments();
    argument_inputs_.assign(arguments.size() > 0 ? arguments.size() - 1 : 0, "");
    for (const auto& in : inputs_) {
      bool found = false;
      for (size_t i = 1; i < arguments.size(); ++i) {
        if (arguments[i].name() == in.name) {
          argument_inputs_[i - 1] = in.name;
          found = true;
        }
      }
      if (!found) {
        throw_config_error("bad_ports", "torchscript: input '" + in.name + "' is not an argument of " + method_name_ +
                                            "() in '" + path_ + "' (" + describe_arguments(arguments) + ")");
      }
    }
    for (size_t i = 1; i < arguments.size(); ++i) {
      if (argument_inputs_[i - 1].empty() && !arguments[i].default_value()) {
        throw_config_error("bad_ports", "torchscript: " + method_name_ + "() in '" + path_ + "' needs argument '" +
                                            arguments[i].name() + "': declare it under inputs");
      }
    }
    defaults_.clear();
    for (size_t i = 1; i < arguments.size(); ++i) {
      defaults_.push_back(arguments[i].default_value() ? *arguments[i].default_value() : c10::IValue());
    }
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    std::vector<c10::IValue> stack;
    stack.reserve(argument_inputs_.size());
    for (size_t i = 0; i < argument_inputs_.size(); ++i) {
      const std::string& port = argument_inputs_[i];
      const Value* v = port.empty() ? nullptr : optional_input(inputs, port);
      if (v && dtype_ != at::kFloat && v->tensor().is_floating_point())
        stack.emplace_back(v->tensor().to(device_, dtype_));
      else if (v)
        stack.emplace_back(v->tensor().to(device_));
      else
        stack.push_back(defaults_[i]);
    }
    c10::IValue result;
    try {
      result = module_->get_method(method_name_)(std::move(stack));
    } catch (const c10::Error& e) {
      throw_input_error("torchscript_failed", "torchscript: " + method_name_ + "() of '" + path_ +
                                                  "' failed in stage '" + ctx.stage_id +
                                                  "': " + first_line(e.what_without_backtrace()));
    }
    PortValues out;
    auto store = [&](const DeclaredPort& port, const c10::IValue& value) {
      if (!value.isTensor()) {
        throw_input_error("torchscript_bad_output", "torchscript: output '" + port.name + "' of '" + path_ + "' is a " +
                                                        value.tagKind() + ", not a tensor");
      }
      try {
        out[port.name] = to_value(port, value.toTensor());
      } catch (const Error& e) {
        throw_input_error(e.code(), "torchscript: output '" + port.name + "' of '" + path_ + "': " + e.message());
      }
    };
    if (result.isTensor()) {
      if (outputs_.size() != 1) {
        throw_input_error("torchscript_bad_output", "torchscript: " + method_name_ + "() of '" + path_ +
                                                        "' returned one tensor, but " +
                                                        std::to_string(outputs_.size()) + " outputs are declared");
      }
      store(outputs_[0], result);
    } else if (result.isTuple() || result.isList()) {
      std::vector<c10::IValue> items;
      if (result.isTuple()) {
        for (const auto& item : result.toTuple()->elements()) items.push_back(item);
      } else {
        for (const auto& item : result.toListRef()) items.push_back(item);
      }
      if (items.size() != outputs_.size()) {
        throw_input_error("torchscript_bad_output", "torchscript: " + method_name_ + "() of '" + path_ + "' returned " +
                                                        std::to_string(items.size()) + " values, but " +
                                                        std::to_string(outputs_.size()) + " outputs are declared");
      }
      for (size_t i = 0; i < items.size(); ++i) store(outputs_[i], items[i]);
    } else if (result.isGenericDict()) {
      auto dict = result.toGenericDict();
      for (const auto& port : outputs_) {
        auto it = dict.find(port.name);
        if (it == dict.end()) {
          throw_input_error("torchscript_bad_output", "torchscript: the dict returned by " + method_name_ + "() of '" +
                                                          path_ + "' has no key '" + port.name + "'");
        }
        store(port, it->value());
      }
    } else {
      throw_input_error("torchscript_bad_output", "torchscript: " + method_name_ + "() of '" + path_ + "' returned a " +
                                                      result.tagKind() +
                                                      "; return a tensor, a tuple or a Dict[str, Tensor]");
    }
    ctx.report_progress(1, 1);
    return out;
  }

 private:
  static std::string describe_arguments(const std::vector<c10::Argument>& arguments) {
    std::string s = "arguments:";
    for (size_t i = 1; i < arguments.size(); ++i) s += " " + arguments[i].name();
    return arguments.size() <= 1 ? "it takes no arguments" : s;
  }

  Value to_value(const DeclaredPort& port, const at::Tensor& tensor) const {
    const bool half = tensor.scalar_type() == at::kBFloat16 || tensor.scalar_type() == at::kHalf;
    const at::Tensor t = half ? tensor.to(at::kFloat) : tensor;
    switch (port.type) {
      case ValueType::Tokens: return Value::tokens(t.to(at::kLong));
      case ValueType::Image: return Value::image(t);
      case ValueType::Audio: return Value::audio(t, sample_rate_);
      case ValueType::Video: return Value::video(t, fps_);
      case ValueType::Embedding: return Value::embedding(t);
      case ValueType::Latent: return Value::latent(t);
      default: return Value::tensor(t);
    }
  }

  std::string path_;
  std::string method_name_;
  std::vector<DeclaredPort> inputs_;
  std::vector<DeclaredPort> outputs_;
  std::vector<std::string> argument_inputs_;  // per method argument: the input port feeding it, or ""
  std::vector<c10::IValue> defaults_;
  int64_t sample_rate_ = 16000;
  double fps_ = 8.0;
  torch::Device device_{torch::kCPU};
  at::ScalarType dtype_ = at::kFloat;
  std::shared_ptr<torch::jit::Module> module_;
};

StageInfo torchscript_info() {
  StageInfo info;
  info.type = "torchscript";
  info.description =
      "Runs a method of a TorchScript module; ports are declared in the parameters. A TorchScript file is "
      "code: use only files from a trusted source. With a non-float32 dtype the module's floating-point parameters "
      "and buffers are cast to it and so are floating-point inputs (the script must then be dtype-generic: tensors "
      "it creates itself keep their dtype); bfloat16 and float16 outputs come back as float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  ParamSpec path = param_spec("path", ParamType::Path, nullptr, "TorchScript file (torch.jit.save)");
  path.required = true;
  ParamSpec inputs =
      param_spec("inputs", ParamType::Object, Json::object(), "input ports: {argument name: value type}");
  ParamSpec outputs = param_spec("outputs", ParamType::Object, nullptr, "output ports: {name: value type}");
  outputs.required = true;
  info.params = {
      path,
      param_spec("method", ParamType::String, "forward", "the method to call"),
      inputs,
      outputs,
      param_spec("output_order", ParamType::StringList, Json::array(),
                 "output names in the order of a returned tuple (default: alphabetical)"),
      ranged_param("sample_rate", ParamType::Int, 16000, 1, 1000000, "sample rate of audio outputs"),
      ranged_param("fps", ParamType::Float, 8.0, 1e-3, 1000.0, "frame rate of video outputs"),
  };
  info.ports_for = torchscript_ports;
  info.create = [] { return std::make_unique<TorchScriptStage>(); };
  return info;
}

A2A_REGISTER_STAGE(torchscript_info);

}  // namespace
}  // namespace a2a
