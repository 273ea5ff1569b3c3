#include "pipeline/stage.h"

#include <filesystem>
#include <mutex>

#include "base/error.h"

namespace a2a {

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::String: return "string";
    case ParamType::Path: return "path";
    case ParamType::IntList: return "int list";
    case ParamType::FloatList: return "float list";
    case ParamType::StringList: return "string list";
    case ParamType::Object: return "mapping";
  }
  return "?";
}

const PortSpec* StagePorts::input(const std::string& name) const {
  for (const auto& p : inputs)
    if (p.name == name) return &p;
  return nullptr;
}

const PortSpec* StagePorts::output(const std::string& name) const {
  for (const auto& p : outputs)
    if (p.name == name) return &p;
  return nullptr;
}

void CancellationToken::check() const {
  if (cancelled()) throw Error(ErrorKind::Cancelled, "interrupted", "interrupted");
}

struct ModuleCache::Impl {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<void>> modules;
};

std::shared_ptr<ModuleCache::Impl> ModuleCache::make_impl() { return std::make_shared<Impl>(); }

std::shared_ptr<void> ModuleCache::get_or_create(const std::string& key,
                                                 const std::function<std::shared_ptr<void>()>& create) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    auto it = impl_->modules.find(key);
    if (it != impl_->modules.end()) return it->second;
  }
  auto made = create();  // outside the lock: loading can take long and may load other modules
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto [it, inserted] = impl_->modules.emplace(key, made);
  return it->second;
}

size_t ModuleCache::size() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->modules.size();
}

void ModuleCache::clear() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->modules.clear();
}

std::string ConfigureContext::resolve_path(const std::string& path) const {
  if (path.empty() || base_dir.empty()) return path;
  std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

namespace {
const Json& param_value(const Json& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end() || it->is_null()) {
    throw Error(ErrorKind::Internal, "missing_param", "parameter '" + name + "' is not set");
  }
  return *it;
}
}  // namespace

double param_float(const Json& params, const std::string& name) { return param_value(params, name).get<double>(); }
int64_t param_int(const Json& params, const std::string& name) { return param_value(params, name).get<int64_t>(); }
bool param_bool(const Json& params, const std::string& name) { return param_value(params, name).get<bool>(); }
std::string param_string(const Json& params, const std::string& name) {
  return param_value(params, name).get<std::string>();
}

const Value& input(const PortValues& inputs, const std::string& port) {
  auto it = inputs.find(port);
  if (it == inputs.end()) throw Error(ErrorKind::Internal, "missing_input", "input '" + port + "' is absent");
  return it->second;
}

const Value* optional_input(const PortValues& inputs, const std::string& port) {
  auto it = inputs.find(port);
  return it == inputs.end() ? nullptr : &it->second;
}

}  // namespace a2a
