#include "pipeline/graph.h"

namespace a2a {

const StageNode* GraphSpec::stage(const std::string& id) const {
  for (const auto& s : stages)
    if (s.id == id) return &s;
  return nullptr;
}

StageNode* GraphSpec::stage(const std::string& id) {
  for (auto& s : stages)
    if (s.id == id) return &s;
  return nullptr;
}

const GraphInput* GraphSpec::input(const std::string& name) const {
  for (const auto& i : inputs)
    if (i.name == name) return &i;
  return nullptr;
}

const GraphOutput* GraphSpec::output(const std::string& name) const {
  for (const auto& o : outputs)
    if (o.name == name) return &o;
  return nullptr;
}

Json GraphSpec::canonical() const {
  Json j;
  j["version"] = version;
  j["name"] = name;
  j["device"] = device;
  j["dtype"] = dtype;
  j["seed"] = seed;
  j["threads"] = threads;
  j["workers"] = workers;
  j["cache_mb"] = cache_mb;
  j["plugins"] = plugins;
  j["inputs"] = Json::array();
  for (const auto& i : inputs) {
    Json ij = {{"name", i.name}, {"type", value_type_name(i.type)}};
    if (i.default_value) ij["default"] = *i.default_value;
    j["inputs"].push_back(ij);
  }
  j["stages"] = Json::array();
  for (const auto& s : stages) {
    Json wires = Json::object();
    for (const auto& w : s.inputs) wires[w.port] = w.source;
    j["stages"].push_back({{"id", s.id}, {"type", s.type}, {"params", s.params}, {"inputs", wires}});
  }
  j["outputs"] = Json::array();
  for (const auto& o : outputs) j["outputs"].push_back({{"name", o.name}, {"from", o.source}, {"save", o.save}});
  return j;
}

std::optional<SourceRef> parse_source(const std::string& source) {
  auto dot = source.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == source.size()) return std::nullopt;
  SourceRef ref;
  std::string head = source.substr(0, dot);
  std::string tail = source.substr(dot + 1);
  if (tail.find('.') != std::string::npos) return std::nullopt;
  if (head == "inputs") {
    ref.graph_input = true;
    ref.node = tail;
  } else {
    ref.node = head;
    ref.port = tail;
  }
  return ref;
}

}  // namespace a2a
