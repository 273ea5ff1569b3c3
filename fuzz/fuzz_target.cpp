#include "fuzz/fuzz_target.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <typeinfo>

#include "base/error.h"

namespace fs = std::filesystem;

namespace a2a::fuzz {

namespace {

std::vector<Target>& registry() {
  static std::vector<Target> all;
  return all;
}

const char kPartSeparator[] = "\n--8<--\n";

}  // namespace

TargetRegistrar::TargetRegistrar(const char* name, const char* covers, Harness run, SeedMaker seeds) {
  auto& all = registry();
  all.push_back({name, covers, run, seeds});
  std::sort(all.begin(), all.end(), [](const Target& a, const Target& b) { return a.name < b.name; });
}

const std::vector<Target>& targets() { return registry(); }

const Target* find_target(const std::string& name) {
  for (const auto& t : registry())
    if (t.name == name) return &t;
  return nullptr;
}

Outcome run_input(const Target& target, const Bytes& input) {
  try {
    target.run(input);
  } catch (const Error& e) {
    return {Outcome::Refused, e.formatted()};
  } catch (const ErrorList& e) {
    return {Outcome::Refused, e.formatted()};
  } catch (const Defect& e) {
    return {Outcome::Defect, std::string("defect: ") + e.what()};
  } catch (const std::exception& e) {
    return {Outcome::Defect, std::string("uncaught ") + typeid(e).name() + ": " + e.what()};
  } catch (...) {
    return {Outcome::Defect, "uncaught exception of unknown type"};
  }
  return {};
}

std::string run_one(const Target& target, const Bytes& input) {
  Outcome outcome = run_input(target, input);
  return outcome.kind == Outcome::Defect ? outcome.what : "";
}

void fuzz_check(bool holds, const std::string& what) {
  if (!holds) throw Defect(what);
}

// Never destroyed, so that the exit handler that removes the folder can still read its name.
const std::string& scratch_folder_name() {
  static const std::string* folder = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path base = fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                    : tmp                                                           ? fs::path(tmp)
                                                                                    : fs::temp_directory_path();
    fs::path dir = base / ("a2a-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch_folder_name(), ec);
    });
    return new std::string(dir.string());
  }();
  return *folder;
}

std::string scratch_folder() { return scratch_folder_name(); }

std::string scratch_file(const std::string& name, const Bytes& bytes) {
  const std::string path = scratch_folder() + "/" + name;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<Bytes> split_input(const Bytes& input, size_t parts) {
  std::vector<Bytes> out;
  size_t pos = 0;
  while (out.size() + 1 < parts) {
    size_t at = input.find(kPartSeparator, pos);
    if (at == Bytes::npos) break;
    out.push_back(input.substr(pos, at - pos));
    pos = at + sizeof(kPartSeparator) - 1;
  }
  out.push_back(pos <= input.size() ? input.substr(pos) : Bytes());
  out.resize(parts);
  return out;
}

Bytes join_parts(const std::vector<Bytes>& parts) {
  Bytes out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += kPartSeparator;
    out += parts[i];
  }
  return out;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string scratch_media_file(const std::string& stem, const std::vector<std::string>& extensions,
                               const Bytes& input) {
  if (input.empty()) return "";
  return scratch_file(stem + extensions[uint8_t(input[0]) % extensions.size()], input.substr(1));
}

Bytes media_seed(size_t extension, const std::string& path) {
  return Bytes(1, static_cast<char>(extension)) + read_bytes(path);
}

}  // namespace a2a::fuzz
