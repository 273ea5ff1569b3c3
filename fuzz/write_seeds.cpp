// a2a_fuzz_seeds DIR [TARGET...]: writes each target's seed corpus (made by our own writers) into
// DIR/<target>/; `--list` prints the targets and what each covers.
#include <ATen/Parallel.h>

#include <filesystem>
#include <iostream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "fuzz/fuzz_target.h"

int main(int argc, char** argv) {
  using namespace a2a::fuzz;
  at::set_num_threads(1);
  if (argc >= 2 && std::string(argv[1]) == "--list") {
    for (const auto& t : targets()) std::cout << t.name << "\t" << t.covers << "\n";
    return 0;
  }
  if (argc < 2) {
    std::cerr << "usage: a2a_fuzz_seeds DIR [TARGET...] | --list\n";
    return 2;
  }
  try {
    for (const auto& t : targets()) {
      if (argc > 2 && std::find(argv + 2, argv + argc, t.name) == argv + argc) continue;
      const auto folder = std::filesystem::path(argv[1]) / t.name;
      std::filesystem::create_directories(folder);
      const auto seeds = t.seeds();
      for (const auto& [name, bytes] : seeds) a2a::write_file_atomically((folder / name).string(), bytes);
      std::cout << t.name << ": " << seeds.size() << " seeds\n";
    }
  } catch (const a2a::Error& e) {
    std::cerr << e.formatted() << "\n";
    return 1;
  }
  return 0;
}
