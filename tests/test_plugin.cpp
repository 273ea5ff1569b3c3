// Plugin libraries: the example plugin's stage registers like a built-in one and runs in a pipeline.
#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "pipeline/error.h"
#include "pipeline/pipeline.h"
#include "pipeline/plugin_loader.h"
#include "pipeline/registry.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

const std::string kExamplePlugin = std::string(A2A_BINARY_DIR) + "/plugins/liba2a_example_plugin.so";

void expect_plugin_error(const std::string& path, const std::string& code) {
  try {
    a2a::load_plugin(path);
    FAIL("expected " << code << " for " << path);
  } catch (const a2a::Error& e) {
    INFO(e.formatted());
    CHECK(e.code() == code);
    CHECK(e.message().find(path) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("a plugin library registers its stages and they run in a pipeline", "[plugin]") {
  REQUIRE(fs::exists(kExamplePlugin));
  a2a::load_plugin(kExamplePlugin);
  a2a::load_plugin(kExamplePlugin);  // a second load of the same file does nothing
  REQUIRE(a2a::StageRegistry::global().find("example_invert_image") != nullptr);
  const auto loaded = a2a::loaded_plugins();
  CHECK(std::count(loaded.begin(), loaded.end(), fs::canonical(kExamplePlugin).string()) == 1);

  a2a::GraphBuilder b;
  b.input("image", a2a::ValueType::Image);
  b.stage("invert", "example_invert_image").param("strength", 1.0).wire("image", "inputs.image");
  b.output("image", "invert.image");
  a2a::Pipeline pipeline(b);
  auto image = at::rand({1, 3, 4, 4});
  a2a::RunRequest request;
  request.inputs = {{"image", a2a::Value::image(image)}};
  auto result = pipeline.run(request);
  CHECK(at::allclose(result.outputs.at("image").tensor(), 1.0 - image));
}

TEST_CASE("plugin errors: missing library, missing symbol, duplicate stage type", "[plugin]") {
  REQUIRE(fs::exists(kExamplePlugin));
  a2a::load_plugin(kExamplePlugin);
  const auto dir = fs::path(a2a::test::scratch_dir()) / "plugins";
  fs::create_directories(dir);

  expect_plugin_error((dir / "libnothere.so").string(), "plugin_not_found");

  const std::string fake = (dir / "libfake.so").string();
  std::ofstream(fake) << "not an ELF file";
  expect_plugin_error(fake, "plugin_load_failed");

  // The core library is a shared library but not a plugin.
  expect_plugin_error(std::string(A2A_BINARY_DIR) + "/liba2a_core.so", "plugin_symbol_missing");

  // A second copy of the example registers the same stage type again.
  const std::string copy = (dir / "libexample_copy.so").string();
  fs::copy_file(kExamplePlugin, copy, fs::copy_options::overwrite_existing);
  expect_plugin_error(copy, "duplicate_stage_type");
  CHECK(a2a::StageRegistry::global().find("example_invert_image") != nullptr);  // the first one stays
  const auto loaded = a2a::loaded_plugins();
  CHECK(std::find(loaded.begin(), loaded.end(), fs::canonical(copy).string()) == loaded.end());
}
