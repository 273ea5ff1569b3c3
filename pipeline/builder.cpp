#include "pipeline/builder.h"

#include <algorithm>
#include <filesystem>
#include <utility>

namespace a2a {

GraphBuilder::StageRef& GraphBuilder::StageRef::param(const std::string& name, Json value, SourceLocation where) {
  StageNode& node = builder_->spec_.stages[index_];
  node.params[name] = std::move(value);
  if (where.known() || !where.file.empty()) node.param_where[name] = std::move(where);
  return *this;
}

GraphBuilder::StageRef& GraphBuilder::StageRef::wire(const std::string& port, const std::string& source,
                                                     SourceLocation where) {
  builder_->spec_.stages[index_].inputs.push_back(Wire{port, source, std::move(where)});
  return *this;
}

GraphBuilder& GraphBuilder::name(std::string name) {
  spec_.name = std::move(name);
  return *this;
}
GraphBuilder& GraphBuilder::device(std::string device) {
  spec_.device = std::move(device);
  return *this;
}
GraphBuilder& GraphBuilder::dtype(std::string dtype) {
  spec_.dtype = std::move(dtype);
  return *this;
}
GraphBuilder& GraphBuilder::seed(uint64_t seed) {
  spec_.seed = seed;
  return *this;
}
GraphBuilder& GraphBuilder::threads(int threads) {
  spec_.threads = threads;
  return *this;
}
GraphBuilder& GraphBuilder::cache_mb(int64_t megabytes) {
  spec_.cache_mb = megabytes;
  return *this;
}

GraphBuilder& GraphBuilder::workers(int workers) {
  spec_.workers = workers;
  return *this;
}
GraphBuilder& GraphBuilder::plugin(std::string path) {
  spec_.plugins.push_back(std::move(path));
  return *this;
}
GraphBuilder& GraphBuilder::source_file(const std::string& path) {
  spec_.file = path;
  spec_.base_dir = std::filesystem::absolute(std::filesystem::path(path)).parent_path().lexically_normal().string();
  return *this;
}
GraphBuilder& GraphBuilder::base_dir(std::string dir) {
  spec_.base_dir = std::move(dir);
  return *this;
}

GraphBuilder& GraphBuilder::input(const std::string& name, ValueType type, std::optional<Json> default_value,
                                  SourceLocation where) {
  spec_.inputs.push_back(GraphInput{name, type, std::move(default_value), std::move(where)});
  return *this;
}

GraphBuilder::StageRef GraphBuilder::stage(const std::string& id, const std::string& type, SourceLocation where,
                                           SourceLocation type_where) {
  StageNode node;
  node.id = id;
  node.type = type;
  node.where = std::move(where);
  node.type_where = std::move(type_where);
  spec_.stages.push_back(std::move(node));
  return StageRef(this, spec_.stages.size() - 1);
}

GraphBuilder& GraphBuilder::output(const std::string& name, const std::string& source, const std::string& save,
                                   SourceLocation where) {
  spec_.outputs.push_back(GraphOutput{name, source, save, std::move(where)});
  return *this;
}

GraphBuilder& GraphBuilder::load_errors(std::vector<Error> errors) {
  load_errors_ = std::move(errors);
  return *this;
}

ValidatedGraph GraphBuilder::build(const StageRegistry& registry) const {
  if (load_errors_.empty()) return validate_or_throw(spec_, registry);
  std::vector<Error> errors = load_errors_;
  for (auto& e : validate_graph(spec_, registry, nullptr, ValidationScope::StagesOnly)) errors.push_back(std::move(e));
  // One report in file order, as the user reads the config.
  std::stable_sort(errors.begin(), errors.end(), [](const Error& a, const Error& b) {
    return std::make_pair(a.where().line, a.where().column) < std::make_pair(b.where().line, b.where().column);
  });
  throw ErrorList(std::move(errors));
}

}  // namespace a2a
