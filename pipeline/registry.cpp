#include "pipeline/registry.h"

#include <mutex>

#include "base/error.h"

namespace a2a {

struct StageRegistry::Impl {
  mutable std::mutex mutex;
  std::map<std::string, std::shared_ptr<const StageInfo>> stages;
  std::vector<std::string> registration_errors;
};

StageRegistry::StageRegistry() : impl_(std::make_shared<Impl>()) {}

StageRegistry& StageRegistry::global() {
  static StageRegistry* registry = new StageRegistry();  // never destroyed: plugins may outlive statics
  return *registry;
}

void StageRegistry::add(StageInfo info) {
  if (info.type.empty()) throw Error(ErrorKind::Config, "bad_stage_type", "a stage type needs a name");
  if (!info.create) {
    throw Error(ErrorKind::Config, "bad_stage_type", "stage type '" + info.type + "' has no factory");
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->stages.count(info.type)) {
    throw Error(ErrorKind::Config, "duplicate_stage_type", "stage type '" + info.type + "' is already registered");
  }
  std::string name = info.type;
  impl_->stages[name] = std::make_shared<const StageInfo>(std::move(info));
}

const StageInfo* StageRegistry::find(const std::string& type) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->stages.find(type);
  return it == impl_->stages.end() ? nullptr : it->second.get();
}

std::vector<std::string> StageRegistry::types() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<std::string> out;
  for (const auto& kv : impl_->stages) out.push_back(kv.first);
  return out;
}

bool StageRegistry::remove(const std::string& type) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stages.erase(type) > 0;
}

std::vector<std::string> StageRegistry::take_registration_errors() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<std::string> out;
  out.swap(impl_->registration_errors);
  return out;
}

StageRegistrar::StageRegistrar(StageInfo (*make)()) {
  // Never throw from a static initialiser: it would abort the process (or dlopen). Record instead.
  try {
    StageRegistry::global().add(make());
  } catch (const std::exception& e) {
    auto& registry = StageRegistry::global();
    std::lock_guard<std::mutex> lock(registry.impl_->mutex);
    registry.impl_->registration_errors.push_back(e.what());
  }
}

const ParamSpec* StageInfo::param(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

PortSpec in_port(std::string name, ValueType type, std::string doc) {
  return PortSpec{std::move(name), type, true, std::move(doc)};
}
PortSpec optional_in_port(std::string name, ValueType type, std::string doc) {
  return PortSpec{std::move(name), type, false, std::move(doc)};
}
PortSpec out_port(std::string name, ValueType type, std::string doc) {
  return PortSpec{std::move(name), type, false, std::move(doc)};
}
ParamSpec param_spec(std::string name, ParamType type, Json default_value, std::string doc) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = type;
  p.default_value = std::move(default_value);
  p.doc = std::move(doc);
  return p;
}
ParamSpec ranged_param(std::string name, ParamType type, Json default_value, std::optional<double> min,
                       std::optional<double> max, std::string doc) {
  ParamSpec p = param_spec(std::move(name), type, std::move(default_value), std::move(doc));
  p.min = min;
  p.max = max;
  return p;
}
ParamSpec choice_param(std::string name, std::string default_value, std::vector<std::string> choices, std::string doc) {
  ParamSpec p = param_spec(std::move(name), ParamType::String, Json(std::move(default_value)), std::move(doc));
  p.choices = std::move(choices);
  return p;
}

}  // namespace a2a
