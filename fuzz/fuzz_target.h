#pragma once
// A fuzz target: one parser of ours fed arbitrary bytes. The same harness runs under libFuzzer
// (`make fuzz`, with ASan and UBSan) and in the test binary, which replays fuzz/corpus/<target>/ and
// fuzz/regressions/<target>/ through it (`make test`).
//
// A harness returns normally when the parser accepted the input or refused it with a2a::Error or
// a2a::ErrorList: that is the parser's answer to bad input. Any other exception escaping, a broken
// invariant (fuzz_check) or a sanitizer report is a defect.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace a2a::fuzz {

using Bytes = std::string;
using Harness = void (*)(const Bytes& input);
// Named inputs to start from, made by our own writers (and the hostile cases the tests build).
using SeedMaker = std::vector<std::pair<std::string, Bytes>> (*)();

struct Target {
  std::string name;
  std::string covers;  // what the harness drives, for docs/RELIABILITY.md and `--list`
  Harness run = nullptr;
  SeedMaker seeds = nullptr;
};

const std::vector<Target>& targets();  // sorted by name
const Target* find_target(const std::string& name);

struct TargetRegistrar {
  TargetRegistrar(const char* name, const char* covers, Harness run, SeedMaker seeds);
};

// A harness found something the parser should never do.
struct Defect : std::logic_error {
  using std::logic_error::logic_error;
};

struct Outcome {
  enum Kind { Accepted, Refused, Defect } kind = Accepted;
  std::string what;  // the refusal's message or the defect
};
Outcome run_input(const Target& target, const Bytes& input);

// Runs one input. Returns "" when the parser accepted or refused it cleanly, else what went wrong.
std::string run_one(const Target& target, const Bytes& input);

// Throws Defect when the invariant does not hold.
void fuzz_check(bool holds, const std::string& what);

// A file of this process's scratch folder holding `bytes` (rewritten each call); parsers that take a
// path read it.
std::string scratch_file(const std::string& name, const Bytes& bytes);
std::string scratch_folder();

// The input cut at each "\n--8<--\n": several files (a vocabulary and a text) in one input. Always
// `parts` pieces; missing ones are empty.
std::vector<Bytes> split_input(const Bytes& input, size_t parts);
Bytes join_parts(const std::vector<Bytes>& parts);

Bytes read_bytes(const std::string& path);

// The media harnesses' input: one byte choosing the file's extension, then the file. Writes it as
// `stem` + that extension and returns the path; "" for an empty input.
std::string scratch_media_file(const std::string& stem, const std::vector<std::string>& extensions, const Bytes& input);
// A media seed: the extension's index, then the bytes of the file at `path`.
Bytes media_seed(size_t extension, const std::string& path);

}  // namespace a2a::fuzz

#define A2A_FUZZ_CONCAT_(a, b) a##b
#define A2A_FUZZ_CONCAT(a, b) A2A_FUZZ_CONCAT_(a, b)
#define A2A_FUZZ_TARGET(name, covers, run, seeds) \
  static const ::a2a::fuzz::TargetRegistrar A2A_FUZZ_CONCAT(a2a_fuzz_target_, __COUNTER__)(name, covers, run, seeds)
