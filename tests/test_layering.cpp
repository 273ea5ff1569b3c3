// The layering rule of docs/ARCHITECTURE.md, checked by a2a_checkdeps against the folders' DEPS files.
#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;

a2a::test::CommandResult checkdeps(const fs::path& root) {
  return a2a::test::run_command(std::string(A2A_BINARY_DIR) + "/a2a_checkdeps " + root.string());
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A tree with the real DEPS files of the named folders and one header in each.
fs::path tree_with_real_deps(const std::string& name, const std::vector<std::string>& folders) {
  const fs::path root = fs::path(a2a::test::scratch_dir()) / name;
  fs::remove_all(root);
  for (const auto& folder : folders) {
    fs::create_directories(root / folder);
    fs::copy_file(fs::path(A2A_SOURCE_DIR) / folder / "DEPS", root / folder / "DEPS");
    write_file(root / folder / "part.h", "#pragma once\n");
  }
  return root;
}

}  // namespace

TEST_CASE("layering: the source tree follows its DEPS files", "[layering]") {
  const auto result = checkdeps(A2A_SOURCE_DIR);
  INFO(result.output);
  CHECK(result.code == 0);
}

TEST_CASE("layering: a model that includes a stage fails, naming the file and line", "[layering]") {
  const auto root = tree_with_real_deps("planted_model", {"base", "llm", "stages", "pipeline"});
  write_file(root / "llm" / "model.cpp",
             "#include \"llm/part.h\"\n#include <vector>\n#include \"stages/part.h\"\n#include \"base/part.h\"\n");
  const auto result = checkdeps(root);
  INFO(result.output);
  CHECK(result.code == 1);
  CHECK(result.output.find("llm/model.cpp:3: includes \"stages/part.h\"") != std::string::npos);
  CHECK(result.output.find("llm/DEPS") != std::string::npos);
  CHECK(result.output.find("model.cpp:1:") == std::string::npos);
  CHECK(result.output.find("model.cpp:4:") == std::string::npos);
}

TEST_CASE("layering: the pipeline core may not include a model, one folder of models not another", "[layering]") {
  const auto root = tree_with_real_deps("planted_pipeline", {"base", "pipeline", "llm", "diffusion", "nn"});
  write_file(root / "pipeline" / "executor.cpp", "#include \"llm/part.h\"\n");
  write_file(root / "diffusion" / "unet.cpp", "#include \"nn/part.h\"\n#include \"llm/part.h\"\n");
  const auto result = checkdeps(root);
  INFO(result.output);
  CHECK(result.code == 1);
  CHECK(result.output.find("pipeline/executor.cpp:1:") != std::string::npos);
  CHECK(result.output.find("diffusion/unet.cpp:2:") != std::string::npos);
  CHECK(result.output.find("diffusion/unet.cpp:1:") == std::string::npos);
  CHECK(result.output.find("2 layering violation(s)") != std::string::npos);
}

TEST_CASE("layering: a source folder without DEPS fails", "[layering]") {
  const auto root = tree_with_real_deps("planted_missing", {"base"});
  write_file(root / "newfolder" / "thing.cpp", "#include \"base/part.h\"\n");
  const auto result = checkdeps(root);
  INFO(result.output);
  CHECK(result.code == 1);
  CHECK(result.output.find("newfolder/DEPS:1: missing") != std::string::npos);
}
