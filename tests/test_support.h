#pragma once
// Shared helpers for tests: where the fixtures are, skipping when they are absent, and comparisons.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"

namespace a2a::test {

// The checkout and the build folder (tests/test_paths.cpp).
const char* source_dir();
const char* binary_dir();

}  // namespace a2a::test

#define A2A_SOURCE_DIR (::a2a::test::source_dir())
#define A2A_BINARY_DIR (::a2a::test::binary_dir())

namespace a2a::test {

// $A2A_FIXTURES, or ../shared/fixtures beside the checkout.
inline std::string fixtures_dir() {
  if (const char* env = std::getenv("A2A_FIXTURES"); env && *env) return env;
  return std::string(A2A_SOURCE_DIR) + "/../shared/fixtures";
}

inline std::string fixture_path(const std::string& relative) { return fixtures_dir() + "/" + relative; }

inline bool fixture_exists(const std::string& relative) { return std::filesystem::exists(fixture_path(relative)); }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

// A scratch directory unique to the test process, removed at exit by the OS temp cleaner.
std::string scratch_dir();

// The whole content of a file, or "" when it cannot be read.
std::string read_text(const std::string& path);
// Writes the bytes, replacing the file.
void write_text(const std::string& path, const std::string& bytes);
// An empty folder of that name in the scratch directory (emptied when it exists).
std::string fresh_dir(const std::string& name);

// name -> shape of the tensors of a keys/*.txt list ("name<TAB>[a, b]<TAB>param|buffer"): those of one
// kind ("param" or "buffer"), or every one when kind is empty.
using ShapeMap = std::map<std::string, std::vector<int64_t>>;
ShapeMap read_key_list(const std::string& path, const std::string& kind = "");

// "" when the two lists name the same tensors with the same shapes, else the first difference.
std::string first_difference(const ShapeMap& ours, const ShapeMap& ref);

struct CommandResult {
  int code = -1;       // the exit status, or -1 when the command did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs a shell command line with its output captured in the scratch directory.
CommandResult run_command(const std::string& command_line);

// `a2a run configs/CONFIG OPTIONS --output-dir OUT_DIR` with ENV assignments before it, into an emptied
// OUT_DIR, its stderr in OUT_DIR.log; the exit status (0 = success).
int run_shipped_config(const std::string& config, const std::string& out_dir, const std::string& env = "",
                       const std::string& options = "");

// Runs the built `a2a` executable with ARGS.
inline CommandResult run_a2a(const std::string& args) {
  return run_command(std::string(A2A_BINARY_DIR) + "/a2a " + args);
}

// The code of the a2a::Error (or of the first error of an ErrorList) that `fn` throws; "" when it throws none.
template <typename Fn>
std::string error_code(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  } catch (const ErrorList& list) {
    return list.errors().empty() ? "empty ErrorList" : list.errors().front().code();
  }
  return "";
}

// Runs `body` and requires an input a2a::Error with `code` whose message names `path`.
template <class F>
void require_input_error(F body, const std::string& code, const std::string& path) {
  try {
    body();
    FAIL("expected error " << code << " for " << path);
  } catch (const Error& e) {
    INFO(e.formatted());
    CHECK(e.code() == code);
    CHECK(e.kind() == ErrorKind::Input);
    CHECK(e.message().find(path) != std::string::npos);
  }
}

// The relative L-infinity error bound of the fixtures' README: max|ours-ref| <= tol * max(1, max|ref|).
inline double scaled_error(const at::Tensor& ours, const at::Tensor& ref) {
  auto o = ours.to(at::kDouble);
  auto r = ref.to(at::kDouble);
  double scale = std::max(1.0, r.abs().max().item<double>());
  return (o - r).abs().max().item<double>() / scale;
}

}  // namespace a2a::test

namespace a2a::test {
// Records that the running test case skipped something and prints why. The test binary exits with
// kSkippedExitCode only when every check passed; any failure exits 1, whatever was skipped (main.cpp).
void mark_skipped(const std::string& why);
constexpr int kSkippedExitCode = 77;  // ctest's SKIP_RETURN_CODE
}  // namespace a2a::test

// Skips the rest of the current function when a fixture is absent: never a pass.
#define A2A_REQUIRE_FIXTURE(relative)                                                          \
  do {                                                                                         \
    if (!::a2a::test::fixture_exists(relative)) {                                              \
      ::a2a::test::mark_skipped("fixture " + ::a2a::test::fixture_path(relative) + " absent"); \
      return;                                                                                  \
    }                                                                                          \
  } while (0)

// Checks shapes match and the scaled max abs error is within tol.
#define A2A_CHECK_CLOSE(ours, ref, tol)                                      \
  do {                                                                       \
    auto a2a_ours_ = (ours);                                                 \
    auto a2a_ref_ = (ref);                                                   \
    REQUIRE(a2a_ours_.sizes() == a2a_ref_.sizes());                          \
    double a2a_err_ = ::a2a::test::scaled_error(a2a_ours_, a2a_ref_);        \
    INFO("scaled max abs error " << a2a_err_ << " (bound " << (tol) << ")"); \
    CHECK(a2a_err_ <= (tol));                                                \
  } while (0)
