// a2a_checkdeps ROOT: checks every quoted #include under ROOT against the folders' DEPS files.
//
// Each top-level source folder holds a DEPS file, one allowed dependency a line: a folder ("nn"), a
// single header ("encoders/clip_text_model.h") or "*" for anything. A folder may always include its
// own files. A source folder without a DEPS file is itself an error, so that a new folder states its
// place before it lands. Exit 0 when clean, 1 with one "FILE:LINE: ..." line per violation.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Rules {
  std::set<std::string> allowed;  // folders or "folder/file.h"; "*" allows everything
  bool allows(const std::string& own, const std::string& target) const {
    if (allowed.count("*")) return true;
    const auto slash = target.find('/');
    const std::string folder = slash == std::string::npos ? own : target.substr(0, slash);
    return folder == own || allowed.count(folder) > 0 || allowed.count(target) > 0;
  }
};

bool is_source(const fs::path& p) {
  const auto ext = p.extension().string();
  return ext == ".h" || ext == ".cpp" || ext == ".hpp" || ext == ".cc";
}

Rules read_deps(const fs::path& file) {
  Rules rules;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    line.erase(std::find(line.begin(), line.end(), '#'), line.end());
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (!line.empty()) rules.allowed.insert(line);
  }
  return rules;
}

std::string describe(const Rules& rules) {
  std::string out;
  for (const auto& a : rules.allowed) out += (out.empty() ? "" : ", ") + a;
  return out.empty() ? "nothing outside itself" : out;
}

// Folders of ROOT that hold sources anywhere below them, skipping build output and hidden folders.
std::vector<std::string> source_folders(const fs::path& root) {
  std::vector<std::string> folders;
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.empty() || name[0] == '.' || name.rfind("build", 0) == 0) continue;
    for (const auto& f : fs::recursive_directory_iterator(entry.path()))
      if (f.is_regular_file() && is_source(f.path())) {
        folders.push_back(name);
        break;
      }
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

int check_folder(const fs::path& root, const std::string& folder, const std::set<std::string>& known) {
  const fs::path deps = root / folder / "DEPS";
  if (!fs::exists(deps)) {
    std::cout << (fs::path(folder) / "DEPS").string()
              << ":1: missing: every source folder states what it may include\n";
    return 1;
  }
  const Rules rules = read_deps(deps);
  static const std::regex include_line(R"re(^\s*#\s*include\s*"([^"]+)")re");
  int violations = 0;
  for (const auto& f : fs::recursive_directory_iterator(root / folder)) {
    if (!f.is_regular_file() || !is_source(f.path())) continue;
    std::ifstream in(f.path());
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      std::smatch m;
      if (!std::regex_search(line, m, include_line)) continue;
      const std::string target = m[1];
      const auto slash = target.find('/');
      // A path that does not start with one of our folders is relative to the including file.
      if (slash == std::string::npos || !known.count(target.substr(0, slash))) continue;
      if (rules.allows(folder, target)) continue;
      std::cout << fs::relative(f.path(), root).string() << ":" << number << ": includes \"" << target << "\", but "
                << folder << "/ may include only " << describe(rules) << " (" << folder << "/DEPS)\n";
      ++violations;
    }
  }
  return violations;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: a2a_checkdeps ROOT\n";
    return 2;
  }
  const fs::path root = argv[1];
  if (!fs::is_directory(root)) {
    std::cerr << "a2a_checkdeps: " << root.string() << " is not a directory\n";
    return 2;
  }
  const auto folders = source_folders(root);
  const std::set<std::string> known(folders.begin(), folders.end());
  int violations = 0;
  for (const auto& folder : folders) violations += check_folder(root, folder, known);
  if (violations) {
    std::cout << violations << " layering violation(s); the rule is in docs/ARCHITECTURE.md\n";
    return 1;
  }
  std::cout << "layering: " << folders.size() << " folders clean\n";
  return 0;
}
