// Plugin libraries: the example plugin's stage registers like a built-in one and runs in a pipeline.
#include <ATen/ATen.h>
#include <sys/wait.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "media/image_io.h"
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

namespace {

int run_cli(const std::string& arguments, const std::string& log) {
  const auto result = a2a::test::run_a2a(arguments);
  a2a::test::write_text(log, result.output);
  return result.code;
}

std::string read_all(const std::string& path) { return a2a::test::read_text(path); }

}  // namespace

TEST_CASE("a YAML pipeline loads the example plugin through the CLI", "[plugin]") {
  REQUIRE(fs::exists(kExamplePlugin));
  REQUIRE(fs::exists(std::string(A2A_BINARY_DIR) + "/a2a"));
  const auto dir = fs::path(a2a::test::scratch_dir()) / "plugin_cli";
  fs::create_directories(dir);
  const std::string input = (dir / "in.png").string();
  auto image = at::randint(0, 256, {3, 6, 9}).to(at::kFloat).div(255);
  a2a::write_image(image, input);

  // The shipped example names the plugin through `plugins:` and ${A2A_PLUGIN_DIR}.
  ::setenv("A2A_PLUGIN_DIR", (std::string(A2A_BINARY_DIR) + "/plugins").c_str(), 1);
  const std::string out1 = (dir / "out1").string();
  const std::string log1 = (dir / "run1.log").string();
  const int rc =
      run_cli("run " + std::string(A2A_SOURCE_DIR) +
                  "/examples/plugin_stage/invert.yaml --quiet --input image=" + input + " --output-dir " + out1,
              log1);
  INFO(read_all(log1));
  REQUIRE(rc == 0);
  auto inverted = a2a::read_image(out1 + "/inverted.png");
  CHECK(inverted.sub(1.0 - image).abs().max().item<float>() < 1e-6f);

  // The same stage with the library given by --plugin instead.
  const std::string yaml = (dir / "no_plugins_key.yaml").string();
  std::ofstream(yaml) << "version: 1\nname: flagged\ninputs:\n  image: {type: image}\nstages:\n"
                         "  - id: invert\n    type: example_invert_image\n    params: {strength: 0.5}\n"
                         "    inputs: {image: inputs.image}\noutputs:\n  image: {from: invert.image, save: half.png}\n";
  const std::string out2 = (dir / "out2").string();
  const std::string log2 = (dir / "run2.log").string();
  const int rc2 = run_cli(
      "run " + yaml + " --quiet --plugin " + kExamplePlugin + " --input image=" + input + " --output-dir " + out2,
      log2);
  INFO(read_all(log2));
  REQUIRE(rc2 == 0);
  auto half = a2a::read_image(out2 + "/half.png");
  CHECK(half.sub(at::full_like(image, 0.5)).abs().max().item<float>() <= 0.5f / 255 + 1e-6f);

  // Without the plugin the stage type is unknown; a missing library is a clear error, not a crash.
  const std::string log3 = (dir / "run3.log").string();
  CHECK(run_cli("run " + yaml + " --input image=" + input + " --output-dir " + out2, log3) == 1);
  CHECK(read_all(log3).find("example_invert_image") != std::string::npos);
  const std::string log4 = (dir / "run4.log").string();
  CHECK(run_cli("run " + yaml + " --plugin " + (dir / "libmissing.so").string() + " --input image=" + input, log4) ==
        1);
  CHECK(read_all(log4).find("plugin_not_found") != std::string::npos);
}
