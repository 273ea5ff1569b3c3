// The fuzz targets' corpora (fuzz/corpus/<target>/: seeds; fuzz/regressions/<target>/: every input that
// once found a defect) replayed through the same harness code that libFuzzer runs in `make fuzz`.
#include <filesystem>

#include "fuzz/fuzz_target.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> corpus_files(const std::string& kind, const std::string& target) {
  std::vector<fs::path> files;
  const fs::path folder = fs::path(A2A_SOURCE_DIR) / "fuzz" / kind / target;
  if (fs::is_directory(folder))
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

size_t replay(const std::string& target_name) {
  const auto* target = a2a::fuzz::find_target(target_name);
  REQUIRE(target);
  size_t replayed = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    for (const auto& file : corpus_files(kind, target_name)) {
      INFO(file.string());
      CHECK(a2a::fuzz::run_one(*target, a2a::fuzz::read_bytes(file.string())) == "");
      ++replayed;
    }
  }
  return replayed;
}

}  // namespace

TEST_CASE("every fuzz target has its harness file, a seed corpus and a replay here", "[fuzz]") {
  const std::vector<std::string> replayed_here{
      "audio_file",     "bpe_vocab",        "chat_prompt",        "command_line",
      "config_json",    "image_file",       "llama2c_checkpoint", "llama2c_tokenizer",
      "lora_adapter",   "safetensors_file", "safetensors_index",  "sentencepiece_model",
      "tokenizer_json", "video_audio",      "video_file",         "yaml_config"};
  std::vector<std::string> registered;
  for (const auto& t : a2a::fuzz::targets()) {
    registered.push_back(t.name);
    INFO(t.name);
    CHECK(fs::exists(fs::path(A2A_SOURCE_DIR) / "fuzz" / "targets" / (t.name + ".cpp")));
    CHECK(corpus_files("corpus", t.name).size() >= 2);
    CHECK_FALSE(t.covers.empty());
  }
  CHECK(registered == replayed_here);
}

TEST_CASE("every harness accepts some of its seeds and refuses the hostile ones cleanly", "[fuzz]") {
  // A harness whose setup fails refuses everything, and fuzzing it would cover nothing.
  for (const auto& t : a2a::fuzz::targets()) {
    int accepted = 0;
    for (const auto& [name, bytes] : t.seeds()) {
      const auto outcome = a2a::fuzz::run_input(t, bytes);
      INFO(t.name << "/" << name << ": " << outcome.what);
      CHECK(outcome.kind != a2a::fuzz::Outcome::Defect);
      accepted += outcome.kind == a2a::fuzz::Outcome::Accepted;
    }
    INFO(t.name);
    CHECK(accepted >= 1);
  }
}

TEST_CASE("a harness reports a defect, never hides it", "[fuzz]") {
  a2a::fuzz::Target broken{"broken", "", [](const a2a::fuzz::Bytes& input) {
                             if (input == "throw") throw std::out_of_range("vector::at");
                             a2a::fuzz::fuzz_check(input != "invariant", "the invariant broke");
                             if (input == "refuse") a2a::throw_input_error("bad", "refused");
                           }};
  CHECK(a2a::fuzz::run_one(broken, "fine") == "");
  CHECK(a2a::fuzz::run_one(broken, "refuse") == "");
  CHECK(a2a::fuzz::run_one(broken, "invariant") == "defect: the invariant broke");
  CHECK(a2a::fuzz::run_one(broken, "throw").find("vector::at") != std::string::npos);
  const auto parts = a2a::fuzz::split_input(a2a::fuzz::join_parts({"a", "", "c\n--8<"}), 4);
  CHECK(parts == std::vector<std::string>{"a", "", "c\n--8<", ""});
}

#define A2A_FUZZ_REPLAY(target) \
  TEST_CASE("fuzz corpus replays cleanly: " target, "[fuzz]") { CHECK(replay(target) >= 2); }
A2A_FUZZ_REPLAY("audio_file")
A2A_FUZZ_REPLAY("bpe_vocab")
A2A_FUZZ_REPLAY("chat_prompt")
A2A_FUZZ_REPLAY("command_line")
A2A_FUZZ_REPLAY("config_json")
A2A_FUZZ_REPLAY("image_file")
A2A_FUZZ_REPLAY("llama2c_checkpoint")
A2A_FUZZ_REPLAY("llama2c_tokenizer")
A2A_FUZZ_REPLAY("lora_adapter")
A2A_FUZZ_REPLAY("safetensors_file")
A2A_FUZZ_REPLAY("safetensors_index")
A2A_FUZZ_REPLAY("sentencepiece_model")
A2A_FUZZ_REPLAY("tokenizer_json")
A2A_FUZZ_REPLAY("video_audio")
A2A_FUZZ_REPLAY("video_file")
A2A_FUZZ_REPLAY("yaml_config")
