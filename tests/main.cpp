#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "pipeline/runtime.h"
#include "test_support.h"

namespace a2a::test {
namespace {
std::atomic<bool> g_skipped{false};
}  // namespace

void mark_skipped(const std::string& why) {
  g_skipped = true;
  std::cout << "A2A_SKIPPED: " << why << std::endl;
}

std::string scratch_dir() {
  static std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("a2a_tests_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(scratch_dir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

ShapeMap read_key_list(const std::string& path, const std::string& kind) {
  std::ifstream in(path);
  REQUIRE(in.good());
  ShapeMap out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string name, shape, what;
    std::getline(fields, name, '\t');
    std::getline(fields, shape, '\t');
    std::getline(fields, what, '\t');
    if (!kind.empty() && what != kind) continue;
    for (char& ch : shape)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream numbers(shape);
    std::vector<int64_t> dims;
    int64_t d;
    while (numbers >> d) dims.push_back(d);
    out[name] = dims;
  }
  return out;
}

std::string first_difference(const ShapeMap& ours, const ShapeMap& ref) {
  for (const auto& kv : ref) {
    auto it = ours.find(kv.first);
    if (it == ours.end()) return "missing " + kv.first;
    if (it->second != kv.second) return "shape differs for " + kv.first;
  }
  for (const auto& kv : ours) {
    if (!ref.count(kv.first)) return "extra " + kv.first;
  }
  return "";
}

int run_shipped_config(const std::string& config, const std::string& out_dir, const std::string& env,
                       const std::string& options) {
  std::filesystem::remove_all(out_dir);
  std::filesystem::create_directories(out_dir);
  const std::string command = env + " " + std::string(A2A_BINARY_DIR) + "/a2a run " + std::string(A2A_SOURCE_DIR) +
                              "/configs/" + config + " " + options + " --output-dir " + out_dir + " 2>" + out_dir +
                              ".log";
  return std::system(command.c_str());
}

CommandResult run_command(const std::string& command_line) {
  static std::atomic<int> counter{0};
  const std::string log = scratch_dir() + "/command_" + std::to_string(counter++) + ".log";
  const int status = std::system((command_line + " > " + log + " 2>&1").c_str());
  CommandResult result;
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.output = read_text(log);
  return result;
}
}  // namespace a2a::test

int main(int argc, char* argv[]) {
  a2a::initialize_runtime({});
  const int failures = Catch::Session().run(argc, argv);
  std::error_code ec;
  std::filesystem::remove_all(a2a::test::scratch_dir(), ec);
  // A failure is a failure even beside a skip; Catch's own count could read as the skip code.
  if (failures != 0) return 1;
  return a2a::test::g_skipped ? a2a::test::kSkippedExitCode : 0;
}
