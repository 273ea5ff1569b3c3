// The torchscript stage: a module defined and saved here in C++, then run inside a pipeline.
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "pipeline/pipeline.h"
#include "pipeline/registry.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

std::string saved_module() {
  const std::string path = (fs::path(a2a::test::scratch_dir()) / "affine_module.pt").string();
  torch::jit::Module m("Affine");
  m.define(R"JIT(
def forward(self, image, offset):
    return image * 2.0 + offset, image.mean(dim=[1, 2, 3])

def brighten(self, image, amount: float = 0.25):
    return (image + amount).clamp(0.0, 1.0)

def halves(self, x):
    return {"double": x * 2.0, "half": x * 0.5}
)JIT");
  m.save(path);
  return path;
}

a2a::Json params_with_defaults(a2a::Json params) {
  const auto* info = a2a::StageRegistry::global().find("torchscript");
  REQUIRE(info != nullptr);
  for (const auto& p : info->params)
    if (!params.contains(p.name) && !p.default_value.is_null()) params[p.name] = p.default_value;
  return params;
}

std::unique_ptr<a2a::Stage> configured(const a2a::Json& params) {
  const auto* info = a2a::StageRegistry::global().find("torchscript");
  auto stage = info->create();
  a2a::ConfigureContext ctx;
  ctx.stage_id = "ts";
  stage->configure(params_with_defaults(params), ctx);
  return stage;
}

}  // namespace

TEST_CASE("a TorchScript module runs as a pipeline stage", "[torchscript]") {
  const std::string path = saved_module();
  a2a::GraphBuilder b;
  b.input("image", a2a::ValueType::Image).input("offset", a2a::ValueType::Tensor);
  b.stage("affine", "torchscript")
      .param("path", path)
      .param("inputs", {{"image", "image"}, {"offset", "tensor"}})
      .param("outputs", {{"scaled", "image"}, {"mean", "tensor"}})
      .param("output_order", a2a::Json::array({"scaled", "mean"}))
      .wire("image", "inputs.image")
      .wire("offset", "inputs.offset");
  b.output("scaled", "affine.scaled").output("mean", "affine.mean");
  a2a::Pipeline pipeline(b);

  auto image = at::rand({2, 3, 4, 5});
  auto offset = at::full({1}, 0.5f);
  a2a::RunRequest request;
  request.inputs = {{"image", a2a::Value::image(image)}, {"offset", a2a::Value::tensor(offset)}};
  auto result = pipeline.run(request);
  REQUIRE(result.outputs.count("scaled"));
  REQUIRE(result.outputs.count("mean"));
  CHECK(result.outputs.at("scaled").type() == a2a::ValueType::Image);
  CHECK(at::allclose(result.outputs.at("scaled").tensor(), image * 2.0 + 0.5));
  CHECK(at::allclose(result.outputs.at("mean").tensor(), image.mean({1, 2, 3})));
}

TEST_CASE("torchscript passes inputs by argument name, uses defaults and reads dict results", "[torchscript]") {
  const std::string path = saved_module();
  auto image = at::rand({1, 3, 2, 2}) * 0.5;
  {
    auto stage = configured(
        {{"path", path}, {"method", "brighten"}, {"inputs", {{"image", "image"}}}, {"outputs", {{"image", "image"}}}});
    a2a::RunContext ctx;
    auto out = stage->run({{"image", a2a::Value::image(image)}}, ctx);
    CHECK(at::allclose(out.at("image").tensor(), image + 0.25));
  }
  {
    auto stage = configured({{"path", path},
                             {"method", "halves"},
                             {"inputs", {{"x", "tensor"}}},
                             {"outputs", {{"half", "tensor"}, {"double", "latent"}}}});
    a2a::RunContext ctx;
    auto out = stage->run({{"x", a2a::Value::tensor(image)}}, ctx);
    CHECK(at::allclose(out.at("half").tensor(), image * 0.5));
    CHECK(out.at("double").type() == a2a::ValueType::Latent);
    CHECK(at::allclose(out.at("double").tensor(), image * 2.0));
  }
}

TEST_CASE("torchscript reports missing files, methods and arguments clearly", "[torchscript]") {
  const std::string path = saved_module();
  auto expect_code = [](const a2a::Json& params, const std::string& code) {
    try {
      configured(params);
      FAIL("expected " << code);
    } catch (const a2a::Error& e) {
      INFO(e.formatted());
      CHECK(e.code() == code);
    }
  };
  const a2a::Json io = {{"image", "image"}, {"offset", "tensor"}};
  const a2a::Json outs = {{"a", "tensor"}, {"b", "tensor"}};
  expect_code({{"path", path + ".missing"}, {"inputs", io}, {"outputs", outs}}, "file_not_found");
  expect_code({{"path", path}, {"method", "nope"}, {"inputs", io}, {"outputs", outs}}, "method_not_found");
  expect_code({{"path", path}, {"inputs", {{"image", "image"}, {"bias", "tensor"}}}, {"outputs", outs}}, "bad_ports");
  expect_code({{"path", path}, {"inputs", {{"image", "image"}}}, {"outputs", outs}}, "bad_ports");  // offset unwired

  const std::string junk = (fs::path(a2a::test::scratch_dir()) / "junk.pt").string();
  std::ofstream(junk) << "not a zip archive";
  expect_code({{"path", junk}, {"inputs", io}, {"outputs", outs}}, "bad_torchscript");

  // A result that does not fit the declared outputs is an error at run time.
  auto stage = configured({{"path", path}, {"inputs", io}, {"outputs", {{"only", "tensor"}}}});
  a2a::RunContext ctx;
  try {
    stage->run({{"image", a2a::Value::image(at::rand({1, 3, 2, 2}))}, {"offset", a2a::Value::tensor(at::zeros({1}))}},
               ctx);
    FAIL("expected torchscript_bad_output");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "torchscript_bad_output");
  }

  // Ports come from the parameters; an unknown value type is a configuration error.
  const auto* info = a2a::StageRegistry::global().find("torchscript");
  auto ports = info->resolve_ports(params_with_defaults({{"path", path}, {"inputs", io}, {"outputs", outs}}));
  REQUIRE(ports.inputs.size() == 2);
  CHECK(ports.input("image")->type == a2a::ValueType::Image);
  CHECK_THROWS_AS(
      info->resolve_ports(params_with_defaults({{"path", path}, {"inputs", {{"x", "picture"}}}, {"outputs", outs}})),
      a2a::Error);
}
