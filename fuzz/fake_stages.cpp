#include "fuzz/fake_stages.h"

namespace a2a::fuzz {

namespace {

// Validation never runs a stage; the factory only has to exist.
struct FakeStage : Stage {
  PortValues run(const PortValues&, RunContext&) override { return {}; }
};

ParamSpec param(std::string name, ParamType type, Json default_value = nullptr) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = type;
  p.default_value = std::move(default_value);
  return p;
}

PortSpec port(std::string name, ValueType type, bool required = true) {
  PortSpec p;
  p.name = std::move(name);
  p.type = type;
  p.required = required;
  return p;
}

ParamSpec ranged(std::string name, ParamType type, Json default_value, double min, double max) {
  ParamSpec p = param(std::move(name), type, std::move(default_value));
  p.min = min;
  p.max = max;
  return p;
}

StageInfo text_source() {
  StageInfo info;
  info.type = "fake_text";
  info.params = {param("text", ParamType::String, "hello")};
  info.ports.outputs = {port("text", ValueType::Text)};
  return info;
}

StageInfo transform() {
  StageInfo info;
  info.type = "fake_transform";
  info.dtypes = {"float32", "bfloat16"};
  ParamSpec mode = param("mode", ParamType::String, "a");
  mode.choices = {"a", "b", "c"};
  ParamSpec weights = param("weights", ParamType::Path, "");
  weights.must_exist = false;
  info.params = {ranged("steps", ParamType::Int, 4, 1, 1000),
                 ranged("scale", ParamType::Float, 1.0, 0, 100),
                 ranged("sizes", ParamType::IntList, Json::array({8, 8}), 1, 4096),
                 ranged("gains", ParamType::FloatList, Json::array(), -1, 1),
                 param("names", ParamType::StringList, Json::array()),
                 param("flag", ParamType::Bool, false),
                 param("extra", ParamType::Object, Json::object()),
                 mode,
                 weights};
  info.ports.inputs = {port("text", ValueType::Text), port("image", ValueType::Image, false)};
  info.ports.outputs = {port("latent", ValueType::Latent), port("text", ValueType::Text)};
  info.check_params = [](const Json& params) {
    std::vector<ParamProblem> problems;
    if (params.at("steps").get<int64_t>() % 2) problems.push_back({"steps", "bad_steps", "steps must be even"});
    return problems;
  };
  return info;
}

// Ports derived from a parameter, as the llm's signal outputs are.
StageInfo fan_out() {
  StageInfo info;
  info.type = "fake_fan_out";
  info.params = {ranged("outputs", ParamType::Int, 1, 0, 8)};
  info.ports_for = [](const Json& params) {
    StagePorts ports;
    ports.inputs = {port("latent", ValueType::Latent)};
    for (int64_t i = 0; i < params.at("outputs").get<int64_t>(); ++i)
      ports.outputs.push_back(port("out" + std::to_string(i), ValueType::Embedding));
    return ports;
  };
  return info;
}

StageInfo sink() {
  StageInfo info;
  info.type = "fake_decoder";
  info.params = {ranged("width", ParamType::Int, 64, 8, 4096), ranged("height", ParamType::Int, 64, 8, 4096)};
  info.ports.inputs = {port("cond", ValueType::Embedding), port("text", ValueType::Text, false)};
  info.ports.outputs = {port("image", ValueType::Image), port("audio", ValueType::Audio)};
  return info;
}

}  // namespace

const StageRegistry& fake_stage_registry() {
  static const StageRegistry registry = [] {
    StageRegistry r;
    for (auto info : {text_source(), transform(), fan_out(), sink()}) {
      info.create = [] { return std::make_unique<FakeStage>(); };
      r.add(std::move(info));
    }
    return r;
  }();
  return registry;
}

std::vector<std::string> fake_stage_configs() {
  return {
      R"(version: 1
name: fuzz
seed: 3
inputs:
  prompt: {type: text, default: "a cat"}
  photo: image
stages:
  - id: src
    type: fake_text
    params: {text: "hi"}
  - id: t
    type: fake_transform
    params: {steps: 8, scale: 2.5, sizes: [16, 32], gains: [0.5], names: [x, y], flag: true, mode: b}
    inputs: {text: inputs.prompt, image: inputs.photo}
  - id: fan
    type: fake_fan_out
    params: {outputs: 2}
    inputs: {latent: t.latent}
  - id: dec
    type: fake_decoder
    params: {width: 128}
    inputs: {cond: fan.out1, text: src.text}
outputs:
  picture: {from: dec.image, save: picture.png}
  sound: {from: dec.audio, save: sub/sound.wav}
  reply: t.text
)",
      R"(base: &b {steps: 2, scale: 1}
stages:
  - {id: a, type: fake_transform, params: *b, inputs: {text: inputs.p}}
  - {id: b, type: fake_fan_out, inputs: {latent: a.latent}}
inputs: {p: text}
outputs: {x: a.text}
)",
  };
}

}  // namespace a2a::fuzz
