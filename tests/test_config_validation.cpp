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
    GraphBuilder b = parse_graph_yaml(yaml, "p.yaml", sets);
    ValidatedGraph g;
    return validate_graph(b.spec(), StageRegistry::global(), &g);
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

TEST_CASE("bad_setting for device, dtype, workers", "[validation]") {
  auto errors = errors_of("device: tpu\ndtype: int8\nworkers: 0\nstages: []\noutputs: {}\n");
  CHECK(std::count_if(errors.begin(), errors.end(), [](const Error& e) { return e.code() == "bad_setting"; }) == 3);
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

TEST_CASE("every documented validation code is exercised", "[validation]") {
  // The list the README documents; this test file covers each code above.
  const auto& codes = validation_codes();
  for (const char* c : {"yaml_syntax",
                        "unknown_key",
                        "missing_key",
                        "bad_value",
                        "duplicate_stage_id",
                        "bad_setting",
                        "unknown_stage_type",
                        "unknown_param",
                        "param_type",
                        "param_out_of_range",
                        "param_not_allowed",
                        "missing_param",
                        "unknown_port",
                        "bad_source",
                        "unknown_source",
                        "required_input_unwired",
                        "port_type_mismatch",
                        "cycle",
                        "unknown_output_source",
                        "save_path_escapes"}) {
    CHECK(std::find(codes.begin(), codes.end(), c) != codes.end());
  }
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

TEST_CASE("every documented validation code is triggered by a config", "[validation]") {
  StageInfo dynamic;
  dynamic.type = "t_dynamic_ports";
  dynamic.params = {ranged_param("count", ParamType::Int, 1, 0, 8)};
  dynamic.ports_for = [](const Json& params) -> StagePorts {
    if (params.at("count").get<int>() == 0) throw Error(ErrorKind::Config, "bad_ports", "count 0 gives no ports");
    return StagePorts{{}, {out_port("out", ValueType::Tensor)}};
  };
  dynamic.create = [] { return std::unique_ptr<Stage>(); };
  if (!StageRegistry::global().find("t_dynamic_ports")) StageRegistry::global().add(dynamic);
  register_choice_stage("t_choice2");

  const std::string src = "  - id: src\n    type: t_source\n";
  const std::map<std::string, std::string> configs = {
      {"yaml_syntax", "stages: [\n"},
      {"unknown_key", "stagez: []\nstages: []\noutputs: {}\n"},
      {"duplicate_key", "stages: []\nstages: []\noutputs: {}\n"},
      {"missing_key", "outputs: {}\n"},
      {"bad_value", "stages: 5\noutputs: {}\n"},
      {"duplicate_stage_id", "stages:\n" + src + src + "outputs: {}\n"},
      {"duplicate_input", "inputs:\n  x: text\n  x: text\nstages: []\noutputs: {}\n"},
      {"duplicate_output", "stages:\n" + src + "outputs:\n  y: src.out\n  y: src.out\n"},
      {"bad_setting", "device: tpu\nstages: []\noutputs: {}\n"},
      {"unknown_stage_type", "stages:\n  - id: s\n    type: t_nope\noutputs: {}\n"},
      {"unknown_param", "stages:\n" + src + "    params: {bogus: 1}\noutputs: {}\n"},
      {"param_type", "stages:\n" + src + "    params: {size: many}\noutputs: {}\n"},
      {"param_out_of_range", "stages:\n" + src + "    params: {value: 1000}\noutputs: {}\n"},
      {"param_not_allowed",
       "stages:\n  - id: c\n    type: t_choice2\n    params: {mode: fsat, name: n}\noutputs: {}\n"},
      {"missing_param", "stages:\n  - id: c\n    type: t_choice2\noutputs: {}\n"},
      {"unknown_port",
       "stages:\n" + src + "  - id: add\n    type: t_add\n    inputs: {a: src.out, zz: src.out}\noutputs: {}\n"},
      {"duplicate_wiring",
       "stages:\n" + src +
           "  - id: add\n    type: t_add\n    inputs:\n      a: src.out\n      a: src.out\noutputs: {}\n"},
      {"bad_source", "stages:\n" + src + "  - id: add\n    type: t_add\n    inputs: {a: nowhere}\noutputs: {}\n"},
      {"unknown_source", "stages:\n  - id: add\n    type: t_add\n    inputs: {a: ghost.out}\noutputs: {}\n"},
      {"required_input_unwired", "stages:\n  - id: add\n    type: t_add\noutputs: {}\n"},
      {"bad_ports", "stages:\n  - id: d\n    type: t_dynamic_ports\n    params: {count: 0}\noutputs: {}\n"},
      {"port_type_mismatch",
       "inputs:\n  w: text\nstages:\n  - id: sink\n    type: t_image_sink\n    inputs: {image: inputs.w}\noutputs: {}\n"},
      {"cycle",
       "stages:\n  - id: p\n    type: t_add\n    inputs: {a: q.out}\n  - id: q\n    type: t_add\n    inputs: {a: p.out}\noutputs: {}\n"},
      {"unknown_output_source", "stages:\n" + src + "outputs:\n  y: ghost.out\n"},
      {"save_path_escapes", "stages:\n" + src + "outputs:\n  y: {from: src.out, save: ../../x.pt}\n"},
  };
  for (const auto& code : validation_codes()) {
    INFO("code " << code);
    auto it = configs.find(code);
    REQUIRE(it != configs.end());
    auto errors = errors_of(it->second);
    std::string all;
    for (const auto& e : errors) all += e.formatted() + "\n";
    INFO("errors:\n" << all);
    const Error* e = find_code(errors, code);
    REQUIRE(e != nullptr);
    CHECK(e->where().file == "p.yaml");
    if (code != "bad_setting") CHECK(e->where().line > 0);
  }
  CHECK(configs.size() == validation_codes().size());
}
