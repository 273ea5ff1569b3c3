// Every validation error code, with its line and column.
#include <algorithm>

#include "pipeline/config_loader.h"
#include "pipeline_test_stages.h"
#include "test_support.h"

using namespace a2a;

namespace {

std::vector<Error> errors_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  test::register_test_stages();
  try {
    parse_graph_yaml(yaml, "p.yaml", sets).build();
    return {};
  } catch (const ErrorList& e) {
    return e.errors();
  }
}

const Error* find_code(const std::vector<Error>& errors, const std::string& code) {
  for (const auto& e : errors)
    if (e.code() == code) return &e;
  return nullptr;
}

void expect_error(const std::vector<Error>& errors, const std::string& code, int line, int col,
                  const std::string& fragment = "") {
  std::string all;
  for (const auto& e : errors) all += e.formatted() + "\n";
  INFO("errors:\n" << all);
  const Error* e = find_code(errors, code);
  REQUIRE(e != nullptr);
  CHECK(e->where().file == "p.yaml");
  CHECK(e->where().line == line);
  CHECK(e->where().column == col);
  if (!fragment.empty()) CHECK(e->message().find(fragment) != std::string::npos);
  CHECK(e->formatted().rfind("p.yaml:" + std::to_string(line) + ":" + std::to_string(col) + ": error[" + code + "]: ",
                             0) == 0);
}

// A stage type with a choice parameter `mode` (fast, slow) and a required string `name`.
void register_choice_stage(const std::string& type) {
  if (StageRegistry::global().find(type)) return;
  StageInfo info;
  info.type = type;
  info.params = {choice_param("mode", "fast", {"fast", "slow"}), param_spec("name", ParamType::String, nullptr)};
  info.params[1].required = true;
  info.create = [] { return std::unique_ptr<Stage>(); };
  StageRegistry::global().add(info);
}

const char* kValid = R"(name: ok
seed: 3
inputs:
  x: {type: text, default: "hi"}
stages:
  - id: src
    type: t_source
    params: {value: 2.0}
  - id: add
    type: t_add
    inputs: {a: src.out}
outputs:
  y: {from: add.out}
)";

}  // namespace

TEST_CASE("a valid config has no errors", "[validation]") { CHECK(errors_of(kValid).empty()); }

TEST_CASE("yaml_syntax reports the parser's position", "[validation]") {
  auto errors = errors_of("stages:\n  - id: a\n    type: [unclosed\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code() == "yaml_syntax");
  CHECK(errors[0].where().line >= 3);
}

TEST_CASE("a config or --set argument that is not UTF-8 is refused at its byte", "[validation][hostile]") {
  // Found by the command_line fuzzer: a non-UTF-8 value reached nlohmann's dump() in an error message.
  auto errors = errors_of(
      "name: x\nstages:\n  - {id: a\x98"
      "b, type: t_source}\noutputs: {y: a.out}\n");
  expect_error(errors, "yaml_syntax", 3, 11, "not valid UTF-8 text (byte 0x98 at offset 26)");
  // NUL bytes, which yaml-cpp would read as UTF-32 and turn into code points past U+10FFFF.
  expect_error(errors_of(std::string("name: x\nstages: []\noutputs: {y: \"a\0\0\0b\"}\n", 41)), "yaml_syntax", 3, 16,
               "byte 0x00");
  for (const std::string& set : {std::string("stages.src.value=caf\xC3"), std::string("seed=1\0\0\0,x", 12)}) {
    try {
      errors_of(kValid, {set});
      FAIL("a --set argument that is not UTF-8 was taken");
    } catch (const Error& e) {
      CHECK(e.code() == "bad_override");
      CHECK(e.kind() == ErrorKind::Usage);
    }
  }
}

TEST_CASE("a YAML value nested 10^4 deep is too_large, not a stack overflow", "[validation][hostile]") {
  for (int depth : {10000, 100000}) {
    INFO(depth);
    auto errors = errors_of("stages:\n  - id: s\n    type: t_source\n    params: {value: " + std::string(depth, '[') +
                            std::string(depth, ']') + "}\noutputs: {}\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code() == "too_large");
    CHECK(errors[0].where().line == 4);
    CHECK(errors[0].message().find("nests deeper than") != std::string::npos);
  }
}

TEST_CASE("a --set through a stage's params that another --set made a value is bad_override", "[validation][hostile]") {
  // Found by the command_line fuzzer: yaml-cpp's BadSubscript escaped.
  try {
    errors_of(kValid, {"stages.src.params=1", "stages.src.value=2"});
    FAIL("accepted");
  } catch (const ErrorList& list) {
    REQUIRE(list.errors().size() == 1);
    CHECK(list.errors()[0].code() == "bad_override");
    CHECK(list.errors()[0].message().find("is a value, not a mapping") != std::string::npos);
  } catch (const Error& e) {
    CHECK(e.code() == "bad_override");
    CHECK(e.message().find("is a value, not a mapping") != std::string::npos);
  }
}

TEST_CASE("unknown_key with did-you-mean", "[validation]") {
  auto errors = errors_of("name: x\nstagse: []\nstages: []\noutputs: {}\n");
  expect_error(errors, "unknown_key", 2, 1, "did you mean 'stages'");
}

TEST_CASE("unknown key inside a stage", "[validation]") {
  auto errors = errors_of("stages:\n  - id: a\n    type: t_source\n    parms: {}\noutputs: {}\n");
  expect_error(errors, "unknown_key", 4, 5, "did you mean 'params'");
}

TEST_CASE("missing_key and bad_value", "[validation]") {
  auto errors = errors_of("stages:\n  - type: t_source\noutputs: {y: {save: a.png}}\n");
  expect_error(errors, "missing_key", 2, 5, "needs an id");
  CHECK(find_code(errors, "missing_key") != nullptr);
  auto bad = errors_of("stages: 5\noutputs: {}\n");
  expect_error(bad, "bad_value", 1, 9);
  auto bad_type = errors_of("inputs:\n  x: {type: imgae}\nstages: []\noutputs: {}\n");
  expect_error(bad_type, "bad_value", 2, 13, "did you mean 'image'");
}

TEST_CASE("duplicate_key in a mapping", "[validation]") {
  auto errors = errors_of("stages: []\nstages: []\noutputs: {}\n");
  expect_error(errors, "duplicate_key", 2, 1);
}

TEST_CASE("unknown_stage_type with did-you-mean", "[validation]") {
  auto errors = errors_of("stages:\n  - id: a\n    type: t_sourse\noutputs: {}\n");
  expect_error(errors, "unknown_stage_type", 3, 11, "did you mean 't_source'");
}

TEST_CASE("duplicate_stage_id", "[validation]") {
  auto errors = errors_of("stages:\n  - id: a\n    type: t_source\n  - id: a\n    type: t_source\noutputs: {}\n");
  expect_error(errors, "duplicate_stage_id", 4, 5);
}

TEST_CASE("parameter errors: unknown, type, range, choices, required", "[validation]") {
  auto errors = errors_of(
      "stages:\n"
      "  - id: a\n"
      "    type: t_source\n"
      "    params: {valeu: 1, size: many}\n"
      "  - id: b\n"
      "    type: t_source\n"
      "    params:\n"
      "      value: 1000\n"
      "outputs: {}\n");
  expect_error(errors, "unknown_param", 4, 21, "did you mean 'value'");
  expect_error(errors, "param_type", 4, 30, "integer");
  expect_error(errors, "param_out_of_range", 8, 14, "outside its range");

  register_choice_stage("t_choice");
  auto choice = errors_of("stages:\n  - id: c\n    type: t_choice\n    params: {mode: fsat}\noutputs: {}\n");
  expect_error(choice, "param_not_allowed", 4, 20, "did you mean 'fast'");
  expect_error(choice, "missing_param", 2, 5, "'name'");
}

TEST_CASE("port errors: unknown port, bad and unknown sources, unwired required input", "[validation]") {
  auto errors = errors_of(
      "stages:\n"
      "  - id: src\n"
      "    type: t_source\n"
      "  - id: add\n"
      "    type: t_add\n"
      "    inputs: {aa: src.out, b: nowhere}\n"
      "  - id: add2\n"
      "    type: t_add\n"
      "    inputs: {a: src.outt, b: ghost.out}\n"
      "  - id: add3\n"
      "    type: t_add\n"
      "    inputs: {a: inputs.missing}\n"
      "outputs: {}\n");
  expect_error(errors, "unknown_port", 6, 18, "did you mean 'a'");
  expect_error(errors, "bad_source", 6, 30);
  expect_error(errors, "unknown_source", 9, 17, "did you mean 'out'");
  expect_error(errors, "required_input_unwired", 4, 5, "'a'");
  size_t unknown_sources =
      std::count_if(errors.begin(), errors.end(), [](const Error& e) { return e.code() == "unknown_source"; });
  CHECK(unknown_sources == 3);  // src.outt, ghost.out, inputs.missing
}

TEST_CASE("port_type_mismatch", "[validation]") {
  auto errors = errors_of(
      "inputs:\n  words: text\nstages:\n  - id: sink\n    type: t_image_sink\n    inputs: {image: inputs.words}\noutputs: {}\n");
  expect_error(errors, "port_type_mismatch", 6, 21, "takes image");
}

TEST_CASE("cycle names the stages in the cycle", "[validation]") {
  auto errors = errors_of(
      "stages:\n"
      "  - id: a\n    type: t_add\n    inputs: {a: c.out}\n"
      "  - id: b\n    type: t_add\n    inputs: {a: a.out}\n"
      "  - id: c\n    type: t_add\n    inputs: {a: b.out}\n"
      "outputs: {}\n");
  const Error* e = find_code(errors, "cycle");
  REQUIRE(e != nullptr);
  CHECK(e->message().find("a -> b -> c -> a") != std::string::npos);
  CHECK(e->where().line > 0);
}

TEST_CASE("output errors: unknown source and a save path outside the output dir", "[validation]") {
  auto errors = errors_of(
      "stages:\n  - id: src\n    type: t_source\n"
      "outputs:\n"
      "  a: {from: src.nope}\n"
      "  b: {from: srx.out}\n"
      "  c: {from: src.out, save: ../../etc/passwd}\n"
      "  d: {from: src.out, save: /tmp/x.png}\n"
      "  e: {from: src.out, save: sub/../ok.png}\n");
  expect_error(errors, "unknown_output_source", 5, 13);
  size_t escapes =
      std::count_if(errors.begin(), errors.end(), [](const Error& e) { return e.code() == "save_path_escapes"; });
  CHECK(escapes == 2);
  const Error* unknown = nullptr;
  for (const auto& e : errors)
    if (e.code() == "unknown_output_source" && e.where().line == 6) unknown = &e;
  REQUIRE(unknown != nullptr);
  CHECK(unknown->message().find("did you mean 'src'") != std::string::npos);
}

TEST_CASE("bad_setting for device, dtype, workers, each at its value", "[validation]") {
  auto errors = errors_of("device: tpu\ndtype: int8\nworkers: 0\nstages: []\noutputs: {}\n");
  CHECK(std::count_if(errors.begin(), errors.end(), [](const Error& e) { return e.code() == "bad_setting"; }) == 3);
  for (const auto& e : errors) {
    CHECK(e.where().column == (e.where().line == 1 ? 9 : e.where().line == 2 ? 8 : 10));
    CHECK(e.where().line >= 1);
  }
}

TEST_CASE("validation collects every error in one report", "[validation]") {
  auto errors = errors_of(
      "stages:\n"
      "  - id: a\n    type: t_sourc\n"
      "  - id: b\n    type: t_add\n    params: {offset: x}\n"
      "  - id: c\n    type: t_add\n    inputs: {a: zz.out}\n"
      "  - id: d\n    type: t_add\n"
      "outputs:\n  o: {from: q.out}\n");
  std::set<std::string> codes;
  for (const auto& e : errors) codes.insert(e.code());
  CHECK(codes.count("unknown_stage_type"));
  CHECK(codes.count("param_type"));
  CHECK(codes.count("unknown_source"));
  CHECK(codes.count("required_input_unwired"));
  CHECK(codes.count("unknown_output_source"));
}

TEST_CASE("set overrides change stage params, inputs and top-level scalars", "[validation]") {
  test::register_test_stages();
  GraphBuilder b = parse_graph_yaml(kValid, "p.yaml",
                                    {"stages.src.value=5", "inputs.x=a cat", "seed=9", "stages.add.params.offset=1.5"});
  ValidatedGraph g = b.build();
  CHECK(g.spec.stage("src")->params["value"].get<double>() == 5.0);
  CHECK(g.spec.stage("add")->params["offset"].get<double>() == 1.5);
  CHECK(g.spec.input("x")->default_value->get<std::string>() == "a cat");
  CHECK(g.spec.seed == 9);
  CHECK_THROWS_AS(parse_graph_yaml(kValid, "p.yaml", {"stages.nope.value=1"}), Error);
  CHECK_THROWS_AS(parse_graph_yaml(kValid, "p.yaml", {"novalue"}), Error);
  // An override that breaks a parameter is reported by validation like any other error.
  auto errors = errors_of(kValid, {"stages.src.value=lots"});
  CHECK(find_code(errors, "param_type") != nullptr);
}

TEST_CASE("environment expansion in string values", "[validation]") {
  ::setenv("A2A_TEST_VAR", "fox", 1);
  ::unsetenv("A2A_TEST_UNSET");
  CHECK(expand_environment("a ${A2A_TEST_VAR}!") == "a fox!");
  CHECK(expand_environment("${A2A_TEST_UNSET:-dflt}/x") == "dflt/x");
  CHECK(expand_environment("${A2A_TEST_VAR:-dflt}") == "fox");
  CHECK(expand_environment("${A2A_TEST_UNSET}") == "");
  CHECK(expand_environment("no ${ close") == "no ${ close");
}

TEST_CASE("duplicate_input, duplicate_output and duplicate_wiring name the second declaration", "[validation]") {
  auto errors = errors_of(
      "inputs:\n"
      "  x: text\n"
      "  x: text\n"
      "stages:\n"
      "  - id: src\n"
      "    type: t_source\n"
      "  - id: add\n"
      "    type: t_add\n"
      "    inputs:\n"
      "      a: src.out\n"
      "      a: src.noise\n"
      "outputs:\n"
      "  y: add.out\n"
      "  y: src.out\n");
  expect_error(errors, "duplicate_input", 3, 3, "'x'");
  expect_error(errors, "duplicate_wiring", 11, 10, "wired twice");
  expect_error(errors, "duplicate_output", 14, 6, "'y'");
  CHECK(find_code(errors, "unknown_port") == nullptr);
}

namespace {

struct Trigger {
  std::string yaml;
  int line;
  int column;
};

void register_code_trigger_stages() {
  test::register_test_stages();
  register_choice_stage("t_choice2");
  if (!StageRegistry::global().find("t_dynamic_ports")) {
    StageInfo dynamic;
    dynamic.type = "t_dynamic_ports";
    dynamic.params = {ranged_param("count", ParamType::Int, 1, 0, 8)};
    dynamic.ports_for = [](const Json& params) -> StagePorts {
      if (params.at("count").get<int>() == 0) throw Error(ErrorKind::Config, "bad_ports", "count 0 gives no ports");
      return StagePorts{{}, {out_port("out", ValueType::Tensor)}};
    };
    dynamic.create = [] { return std::unique_ptr<Stage>(); };
    StageRegistry::global().add(dynamic);
  }
  if (!StageRegistry::global().find("t_float32_only")) {
    StageInfo fp32;
    fp32.type = "t_float32_only";
    fp32.dtypes = {"float32"};
    fp32.params = {param_spec("weights", ParamType::Path, "")};
    fp32.create = [] { return std::unique_ptr<Stage>(); };
    StageRegistry::global().add(fp32);
  }
}

// For each code, a config that triggers it and where (line, column) the error must point.
std::map<std::string, Trigger> code_triggers() {
  const std::string src = "  - id: src\n    type: t_source\n";
  return {
      {"yaml_syntax", {"stages:\n  - id: a\n    type: [unclosed\n", 4, 1}},
      {"unknown_key", {"stagez: []\nstages: []\noutputs: {}\n", 1, 1}},
      {"duplicate_key", {"stages: []\nstages: []\noutputs: {}\n", 2, 1}},
      {"missing_key", {"outputs: {}\n", 1, 1}},
      {"bad_value", {"stages: 5\noutputs: {}\n", 1, 9}},
      {"duplicate_stage_id", {"stages:\n" + src + src + "outputs: {}\n", 4, 5}},
      {"duplicate_input", {"inputs:\n  x: text\n  x: text\nstages: []\noutputs: {}\n", 3, 3}},
      {"duplicate_output", {"stages:\n" + src + "outputs:\n  y: src.out\n  y: src.out\n", 6, 6}},
      {"bad_setting", {"name: n\ndevice: tpu\nstages: []\noutputs: {}\n", 2, 9}},
      {"unknown_stage_type", {"stages:\n  - id: s\n    type: t_nope\noutputs: {}\n", 3, 11}},
      {"unknown_param", {"stages:\n" + src + "    params: {bogus: 1}\noutputs: {}\n", 4, 21}},
      {"param_type", {"stages:\n" + src + "    params: {size: many}\noutputs: {}\n", 4, 20}},
      {"param_out_of_range", {"stages:\n" + src + "    params: {value: 1000}\noutputs: {}\n", 4, 21}},
      {"param_not_allowed",
       {"stages:\n  - id: c\n    type: t_choice2\n    params: {mode: fsat, name: n}\noutputs: {}\n", 4, 20}},
      {"missing_param", {"stages:\n  - id: c\n    type: t_choice2\noutputs: {}\n", 2, 5}},
      {"unknown_port",
       {"stages:\n" + src + "  - id: add\n    type: t_add\n    inputs: {a: src.out, zz: src.out}\noutputs: {}\n", 6,
        30}},
      {"duplicate_wiring",
       {"stages:\n" + src +
            "  - id: add\n    type: t_add\n    inputs:\n      a: src.out\n      a: src.out\noutputs: {}\n",
        8, 10}},
      {"bad_source",
       {"stages:\n" + src + "  - id: add\n    type: t_add\n    inputs: {a: nowhere}\noutputs: {}\n", 6, 17}},
      {"unknown_source", {"stages:\n  - id: add\n    type: t_add\n    inputs: {a: ghost.out}\noutputs: {}\n", 4, 17}},
      {"required_input_unwired", {"stages:\n  - id: add\n    type: t_add\noutputs: {}\n", 2, 5}},
      {"bad_ports", {"stages:\n  - id: d\n    type: t_dynamic_ports\n    params: {count: 0}\noutputs: {}\n", 2, 5}},
      {"port_type_mismatch",
       {"inputs:\n  w: text\nstages:\n  - id: sink\n    type: t_image_sink\n    inputs: {image: inputs.w}\noutputs: {}\n",
        6, 21}},
      {"cycle",
       {"stages:\n  - id: p\n    type: t_add\n    inputs: {a: q.out}\n  - id: q\n    type: t_add\n    inputs: {a: "
        "p.out}\noutputs: {}\n",
        2, 5}},
      {"unknown_output_source", {"stages:\n" + src + "outputs:\n  y: ghost.out\n", 5, 6}},
      {"save_path_escapes", {"stages:\n" + src + "outputs:\n  y: {from: src.out, save: ../../x.pt}\n", 5, 13}},
      {"path_not_found",
       {"stages:\n  - id: f\n    type: t_float32_only\n    params: {weights: no/such/file.safetensors}\noutputs: {}\n",
        4, 23}},
      {"unsupported_dtype", {"dtype: bfloat16\nstages:\n  - id: f\n    type: t_float32_only\noutputs: {}\n", 1, 8}},
      {"save_type_mismatch", {"inputs:\n  w: text\nstages: []\noutputs:\n  y: {from: inputs.w, save: y.png}\n", 5, 13}},
      // A value nested 66 deep: the node past the depth limit (64) is the 66th '['.
      {"too_large",
       {"stages:\n" + src + "    params: {value: " + std::string(66, '[') + std::string(66, ']') + "}\noutputs: {}\n",
        4, 21 + 65}},
  };
}

}  // namespace

TEST_CASE("every documented validation code is triggered by a config, at its line and column", "[validation]") {
  register_code_trigger_stages();
  const auto triggers = code_triggers();
  for (const auto& code : validation_codes()) {
    INFO("code " << code);
    auto it = triggers.find(code);
    REQUIRE(it != triggers.end());
    expect_error(errors_of(it->second.yaml), code, it->second.line, it->second.column);
  }
  CHECK(triggers.size() == validation_codes().size());
}

TEST_CASE("the YAML loader's errors and those of independent passes come in one report", "[validation]") {
  // No outputs mapping (the loader), and an unknown stage type (the types pass, which needs no outputs).
  auto errors =
      errors_of("stages:\n  - id: a\n    type: t_sourse\n  - id: b\n    type: t_source\n    params: {value: 1000}\n");
  expect_error(errors, "missing_key", 1, 1, "outputs");
  expect_error(errors, "unknown_stage_type", 3, 11, "did you mean 't_source'");
  expect_error(errors, "param_out_of_range", 6, 21);
  // In file order.
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].code() == "missing_key");
  CHECK(errors[1].code() == "unknown_stage_type");
}

TEST_CASE("a dtype a stage cannot compute in, and float16 on the CPU, are validation errors", "[validation]") {
  register_code_trigger_stages();
  expect_error(errors_of("dtype: float16\nstages:\n  - id: f\n    type: t_float32_only\noutputs: {}\n"),
               "unsupported_dtype", 1, 8, "float32");
  CHECK(errors_of("dtype: float32\nstages:\n  - id: f\n    type: t_float32_only\noutputs: {}\n").empty());
  // A stage without a model takes any dtype.
  CHECK(errors_of("dtype: bfloat16\nstages:\n  - id: s\n    type: t_source\noutputs: {}\n").empty());
}

TEST_CASE("a model, tokenizer or weights path that does not exist is an error at its line and column, in every stage",
          "[validation]") {
  int covered = 0;
  for (const auto& type : StageRegistry::global().types()) {
    const StageInfo* info = StageRegistry::global().find(type);
    const bool needs_more = std::any_of(info->params.begin(), info->params.end(),
                                        [](const ParamSpec& p) { return p.required && p.type != ParamType::Path; });
    for (const auto& p : info->params) {
      if (p.type != ParamType::Path || !p.must_exist || needs_more) continue;
      INFO("stage " << type << ", parameter " << p.name);
      const std::string yaml =
          "stages:\n  - id: s\n    type: " + type + "\n    params: {" + p.name + ": no/such/file}\noutputs: {}\n";
      auto errors = errors_of(yaml);
      expect_error(errors, "path_not_found", 4, 14 + static_cast<int>(p.name.size()) + 2, "no/such/file");
      CHECK(errors.front().kind() == ErrorKind::Input);
      ++covered;
    }
  }
  // llm (model, tokenizer, lora), both text encoders, both diffusion stages, the VAE and vocoder stages,
  // the projections.
  CHECK(covered >= 12);
}

TEST_CASE("stage rules run at validation time, each at its line and column", "[validation]") {
  const std::string llm = "stages:\n  - id: l\n    type: llm\n";
  expect_error(errors_of("stages:\n  - id: d\n    type: latent_diffusion\n    params: {width: 36, height: 32}\n"
                         "outputs: {}\n"),
               "bad_size", 4, 21, "multiple of 8");
  const std::string existing = std::string(A2A_SOURCE_DIR) + "/configs/chat.yaml";
  expect_error(errors_of(llm + "    params: {preset: tiny, model: " + existing + "}\noutputs: {}\n"),
               "conflicting_model", 4, 22);
  expect_error(errors_of(llm + "    params: {preset: tiny, media: {image: 5}}\noutputs: {}\n"), "bad_media", 4, 35);
  expect_error(errors_of(llm + "    params: {preset: tiny, signal_tokens: {image: []}}\noutputs: {}\n"),
               "bad_signal_tokens", 4, 43);
  expect_error(errors_of(llm + "    params: {preset: tiny, tiny_layers: 2, signal_layers: [5]}\noutputs: {}\n"),
               "bad_signal_layers", 4, 59, "3 hidden states");
  CHECK(find_code(errors_of(llm + "    params: {preset: tiny, tiny_layers: 2, signal_layers: [-3, 2]}\noutputs: {}\n"),
                  "bad_signal_layers") == nullptr);
}

TEST_CASE("media encoder rules run at validation time, at their line and column", "[validation]") {
  const std::string dir = test::fresh_dir("encoder_rules");
  test::write_text(dir + "/imagebind_huge.pth", std::string("PK\x03\x04", 4) + std::string(60, '\0'));
  const std::string stage = "stages:\n  - id: e\n    type: ";
  expect_error(
      errors_of(stage + "imagebind_encoder\n    params: {model: " + dir + "/imagebind_huge.pth}\noutputs: {}\n"),
      "pickle_checkpoint", 4, 21, "safetensors");
  expect_error(errors_of(stage + "t5_text_encoder\n    params: {model: " + dir + "}\noutputs: {}\n"), "missing_config",
               4, 21);
  expect_error(errors_of(stage + "embedding_similarity\n    params: {inputs: [a, b, a]}\noutputs: {}\n"),
               "duplicate_input", 4, 22);
}

TEST_CASE("CLIP's max_length and clip_skip are checked against the model's config at validation", "[validation]") {
  A2A_REQUIRE_FIXTURE("clip_text_model/config.json");
  const auto config = test::read_json(test::fixture_path("clip_text_model/config.json"));
  const int64_t positions = config.at("max_position_embeddings").get<int64_t>();
  const int64_t layers = config.at("num_hidden_layers").get<int64_t>();
  const std::string head = "stages:\n  - id: c\n    type: clip_text_encoder\n    params:\n      model: " +
                           test::fixture_path("clip_text_model") + "\n";
  expect_error(errors_of(head + "      max_length: " + std::to_string(positions + 1) + "\noutputs: {}\n"),
               "max_length_too_large", 6, 19, std::to_string(positions) + " positions");
  expect_error(errors_of(head + "      clip_skip: " + std::to_string(layers + 1) + "\noutputs: {}\n"), "bad_clip_skip",
               6, 18);
  CHECK(find_code(errors_of(head + "      max_length: " + std::to_string(positions) + "\noutputs: {}\n"),
                  "max_length_too_large") == nullptr);
}

namespace {

std::string error_text(const std::vector<Error>& errors) {
  std::string all;
  for (const auto& e : errors) all += e.formatted() + "\n";
  return all;
}

}  // namespace

TEST_CASE("a YAML alias bomb is bounded: one too_large error, no exhausted memory", "[validation][hostile]") {
  // Nine levels of nine aliases: 9^9 values once expanded.
  std::string config = "stages:\n  - id: s\n    type: t_source\n    params:\n      value:\n";
  config += "        - &b0 [x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    const std::string prev = "*b" + std::to_string(level - 1);
    config += "        - &b" + std::to_string(level) + " [" + prev;
    for (int i = 1; i < 9; ++i) config += ", " + prev;
    config += "]\n";
  }
  config += "outputs: {}\n";
  auto errors = errors_of(config);
  INFO(error_text(errors));
  const Error* e = find_code(errors, "too_large");
  REQUIRE(e != nullptr);
  CHECK(e->where().line >= 6);
  CHECK(std::count_if(errors.begin(), errors.end(), [](const Error& x) { return x.code() == "too_large"; }) == 1);
}

TEST_CASE("the document size and the stage count are bounded", "[validation][hostile]") {
  LoadLimits small;
  small.max_stages = 2;
  const std::string three =
      "stages:\n  - {id: a, type: t_source}\n  - {id: b, type: t_source}\n"
      "  - {id: c, type: t_source}\noutputs: {}\n";
  try {
    parse_graph_yaml(three, "p.yaml", {}, small).build();
    FAIL("three stages passed a limit of two");
  } catch (const ErrorList& list) {
    expect_error(list.errors(), "too_large", 2, 3, "3 stages, more than the limit of 2");
  }
  small.max_bytes = 16;
  try {
    parse_graph_yaml(three, "p.yaml", {}, small);
    FAIL("a document over the byte limit was read");
  } catch (const ErrorList& list) {
    expect_error(list.errors(), "too_large", 1, 1, "more than the limit of 16");
  }
}

TEST_CASE("non-finite numbers are out of range, from YAML and from --set", "[validation][hostile]") {
  const std::string head = "stages:\n  - id: s\n    type: t_source\n    params: {value: ";
  for (const std::string value : {"-nan", ".nan", ".NaN", ".inf", "-.inf", "+inf"}) {
    INFO("value " << value);
    auto errors = errors_of(head + value + "}\noutputs: {}\n");
    expect_error(errors, "param_out_of_range", 4, 21, "not a finite number");
  }
  auto from_set = errors_of(head + "1}\noutputs: {}\n", {"stages.s.value=-nan"});
  INFO(error_text(from_set));
  const Error* e = find_code(from_set, "param_out_of_range");
  REQUIRE(e != nullptr);
  CHECK(e->where().file == "--set stages.s.value=-nan");
  CHECK(e->formatted().rfind("--set stages.s.value=-nan: error[param_out_of_range]", 0) == 0);
}

TEST_CASE("errors in what --set changed name the --set argument", "[validation][hostile]") {
  auto where_of = [](const std::vector<std::string>& sets, const std::string& code) {
    std::vector<Error> errors;
    try {
      errors = errors_of(kValid, sets);
    } catch (const Error& e) {
      errors = {e};
    }
    INFO(error_text(errors));
    const Error* e = find_code(errors, code);
    REQUIRE(e != nullptr);
    return e->where().file;
  };
  CHECK(where_of({"seed=abc"}, "bad_value") == "--set seed=abc");
  CHECK(where_of({"stages.src.params=5"}, "bad_value") == "--set stages.src.params=5");
  CHECK(where_of({"bogus=1"}, "unknown_key") == "--set bogus=1");
  CHECK(where_of({"workers=0"}, "bad_setting") == "--set workers=0");
  try {
    parse_graph_yaml(kValid, "p.yaml", {"stages.src.value.x.y=1"});
    FAIL("a path through a scalar was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == "bad_override");
    CHECK(e.where().file == "--set stages.src.value.x.y=1");
    CHECK(e.message().find("is a value, not a mapping") != std::string::npos);
  }
}

TEST_CASE("an empty config is an error at 1:1", "[validation][hostile]") {
  for (const std::string text : {"", "\n", "# only a comment\n"}) {
    expect_error(errors_of(text), "bad_value", 1, 1, "empty");
  }
}

TEST_CASE("every numeric parameter of every stage has a finite range", "[validation][hostile]") {
  int checked = 0;
  for (const auto& type : StageRegistry::global().types()) {
    if (type.rfind("t_", 0) == 0) continue;  // this test binary's own stages
    for (const auto& p : StageRegistry::global().find(type)->params) {
      if (p.type != ParamType::Int && p.type != ParamType::Float && p.type != ParamType::IntList &&
          p.type != ParamType::FloatList)
        continue;
      INFO("stage " << type << ", parameter " << p.name);
      CHECK(p.min.has_value());
      CHECK(p.max.has_value());
      ++checked;
    }
  }
  CHECK(checked > 50);
}
