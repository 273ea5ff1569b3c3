#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "pipeline/runtime.h"
#include "test_support.h"

namespace a2a::test {
std::string scratch_dir() {
  static std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("a2a_tests_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}
}  // namespace a2a::test

int main(int argc, char* argv[]) {
  a2a::initialize_runtime({});
  int result = Catch::Session().run(argc, argv);
  std::error_code ec;
  std::filesystem::remove_all(a2a::test::scratch_dir(), ec);
  return result;
}
