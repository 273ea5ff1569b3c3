#pragma once
// Assembles a pipeline graph in C++. YAML loading goes through this same builder, so a graph
// built in code and one loaded from YAML are identical and pass the same validation.
#include <optional>
#include <string>

#include "pipeline/graph.h"
#include "pipeline/validation.h"

namespace a2a {

class GraphBuilder {
 public:
  class StageRef {
   public:
    StageRef& param(const std::string& name, Json value, SourceLocation where = {});
    // Feeds input `port` from "inputs.NAME" or "STAGE.PORT".
    StageRef& wire(const std::string& port, const std::string& source, SourceLocation where = {});

   private:
    friend class GraphBuilder;
    StageRef(GraphBuilder* builder, size_t index) : builder_(builder), index_(index) {}
    GraphBuilder* builder_;
    size_t index_;
  };

  GraphBuilder& name(std::string name);
  GraphBuilder& device(std::string device);
  GraphBuilder& dtype(std::string dtype);
  GraphBuilder& seed(uint64_t seed);
  GraphBuilder& threads(int threads);
  GraphBuilder& workers(int workers);
  GraphBuilder& cache_mb(int64_t megabytes);
  GraphBuilder& plugin(std::string path);
  // The YAML file the graph came from; relative paths resolve against its folder.
  GraphBuilder& source_file(const std::string& path);
  GraphBuilder& base_dir(std::string dir);

  GraphBuilder& input(const std::string& name, ValueType type, std::optional<Json> default_value = std::nullopt,
                      SourceLocation where = {});
  StageRef stage(const std::string& id, const std::string& type, SourceLocation where = {},
                 SourceLocation type_where = {});
  GraphBuilder& output(const std::string& name, const std::string& source, const std::string& save = "",
                       SourceLocation where = {});

  const GraphSpec& spec() const { return spec_; }
  GraphSpec& mutable_spec() { return spec_; }

  // Errors found while the graph was read (the YAML loader's): build() reports them together with what
  // the passes that need no complete graph find.
  GraphBuilder& load_errors(std::vector<Error> errors);
  const std::vector<Error>& load_errors() const { return load_errors_; }

  // Validates (every pass) and returns the normalised graph; throws ErrorList.
  ValidatedGraph build(const StageRegistry& registry = StageRegistry::global()) const;

 private:
  GraphSpec spec_;
  std::vector<Error> load_errors_;
};

}  // namespace a2a
