// The a2a command line: exit codes and outputs.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace {

using a2a::test::CommandResult;
using a2a::test::run_a2a;

std::string write_config(const std::string& name, const std::string& text) {
  std::string path = a2a::test::scratch_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

const char* kTextConfig = R"(name: echo
inputs:
  prompt: {type: text, default: "hello"}
stages:
  - id: fmt
    type: text_template
    params: {template: "you said: {text}"}
    inputs: {text: inputs.prompt}
outputs:
  reply: {from: fmt.text, save: reply.txt}
)";

}  // namespace

TEST_CASE("a2a --help and unknown commands", "[cli]") {
  CHECK(run_a2a("--help").code == 0);
  auto r = run_a2a("rnu x.yaml");
  CHECK(r.code == 2);
  CHECK(r.output.find("did you mean 'run'") != std::string::npos);
  CHECK(run_a2a("").code == 2);
  for (const char* cmd : {"run", "validate", "graph", "stages", "inspect"}) {
    auto h = run_a2a(std::string(cmd) + " --help");
    CHECK(h.code == 0);
    CHECK(h.output.find("usage: a2a " + std::string(cmd)) != std::string::npos);
  }
}

TEST_CASE("usage errors exit 2", "[cli]") {
  CHECK(run_a2a("run").code == 2);
  CHECK(run_a2a("run a.yaml b.yaml").code == 2);
  CHECK(run_a2a("run x.yaml --bogus").code == 2);
  CHECK(run_a2a("run x.yaml --threads").code == 2);
  std::string cfg = write_config("usage.yaml", kTextConfig);
  CHECK(run_a2a("run " + cfg + " --threads many").code == 2);
  CHECK(run_a2a("run " + cfg + " --input noequals").code == 2);
  CHECK(run_a2a("run " + cfg + " --set noequals").code == 2);
  CHECK(run_a2a("graph " + cfg + " --format png").code == 2);
}

TEST_CASE("config and input errors exit 1 with FILE:LINE:COL", "[cli]") {
  std::string bad = write_config("bad.yaml", "stages:\n  - id: a\n    type: nosuchstage\noutputs: {}\n");
  auto r = run_a2a("validate " + bad);
  CHECK(r.code == 1);
  CHECK(r.output.find(bad + ":3:11: error[unknown_stage_type]") != std::string::npos);
  CHECK(run_a2a("run " + bad).code == 1);
  CHECK(run_a2a("validate /nonexistent/config.yaml").code == 1);
  std::string cfg = write_config("inputs.yaml", kTextConfig);
  auto unknown_input = run_a2a("run " + cfg + " --input nope=1 --output-dir " + a2a::test::scratch_dir() + "/o1");
  CHECK(unknown_input.code == 1);
  CHECK(run_a2a("run " + cfg + " --set stages.ghost.x=1").code == 1);
  std::string escape =
      write_config("escape.yaml", std::string(kTextConfig) + "  leak: {from: fmt.text, save: ../../x.txt}\n");
  auto e = run_a2a("validate " + escape);
  CHECK(e.code == 1);
  CHECK(e.output.find("error[save_path_escapes]") != std::string::npos);
  CHECK(run_a2a("stages nosuchstage").code == 1);
  CHECK(run_a2a("inspect /nonexistent.safetensors").code == 1);
}

TEST_CASE("a model path that does not exist fails validation with FILE:LINE:COL, never a preset", "[cli]") {
  std::string absent = write_config("absent_model.yaml",
                                    "stages:\n  - id: l\n    type: llm\n    params:\n      model: no/such/model.bin\n"
                                    "    inputs: {prompt: inputs.p}\ninputs: {p: text}\noutputs: {t: l.text}\n");
  for (const std::string& command : {std::string("validate ") + absent,
                                     "run " + absent + " --output-dir " + a2a::test::scratch_dir() + "/absent_out"}) {
    auto r = run_a2a(command);
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find(absent + ":5:14: error[path_not_found]") != std::string::npos);
    CHECK(r.output.find("no/such/model.bin") != std::string::npos);
    CHECK(r.output.find("tiny") == std::string::npos);
  }
}

TEST_CASE("a2a run writes outputs atomically under --output-dir", "[cli]") {
  std::string cfg = write_config("ok.yaml", kTextConfig);
  std::string out = a2a::test::scratch_dir() + "/run_out";
  auto r = run_a2a("run " + cfg + " --output-dir " + out + " --input prompt=hi --set stages.fmt.template=\"[{text}]\"");
  INFO(r.output);
  REQUIRE(r.code == 0);
  std::ifstream in(out + "/reply.txt");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  CHECK(text == "[hi]");
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  CHECK(r.output.find("total") != std::string::npos);  // the timing table
  CHECK(run_a2a("validate " + cfg).code == 0);
}

TEST_CASE("a2a graph prints DOT and Mermaid", "[cli]") {
  std::string cfg = write_config("graph.yaml", kTextConfig);
  auto dot = run_a2a("graph " + cfg);
  CHECK(dot.code == 0);
  CHECK(dot.output.find("digraph") != std::string::npos);
  CHECK(dot.output.find("\"in_prompt\" -> \"fmt\"") != std::string::npos);
  auto mermaid = run_a2a("graph " + cfg + " --format mermaid");
  CHECK(mermaid.code == 0);
  CHECK(mermaid.output.find("flowchart LR") != std::string::npos);
  CHECK(mermaid.output.find("in_prompt -->|text| fmt") != std::string::npos);
}

TEST_CASE("a2a stages lists types as text and JSON", "[cli]") {
  auto text = run_a2a("stages");
  CHECK(text.code == 0);
  CHECK(text.output.find("text_template") != std::string::npos);
  CHECK(text.output.find("template: string") != std::string::npos);
  auto json = run_a2a("stages --json");
  REQUIRE(json.code == 0);
  auto parsed = nlohmann::json::parse(json.output);
  bool found = false;
  for (const auto& s : parsed) {
    if (s["type"] == "tone") {
      found = true;
      CHECK(s["outputs"][0]["type"] == "audio");
      CHECK(s["params"].size() == 4);
    }
  }
  CHECK(found);
}

TEST_CASE("Ctrl-C interrupts a long stage, exits 130 and writes no files", "[cli]") {
  std::string cfg = write_config("slow.yaml", R"(name: slow
stages:
  - id: tone
    type: tone
    params: {seconds: 30.0, sample_rate: 16000}
  - id: mel
    type: mel_spectrogram
    params: {n_fft: 512, hop_length: 128, n_mels: 64}
    inputs: {audio: tone.audio}
  - id: vocoder
    type: griffin_lim
    params: {n_iter: 10000, n_fft: 512, hop_length: 128}
    inputs: {spectrogram: mel.mel}
outputs:
  audio: {from: vocoder.audio, save: slow.wav}
)");
  std::string out = a2a::test::scratch_dir() + "/interrupted";
  std::string cmd = "timeout --preserve-status -s INT 4 " + std::string(A2A_BINARY_DIR) + "/a2a run " + cfg +
                    " --output-dir " + out + " > /dev/null 2>&1";
  int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  bool any_file = std::filesystem::exists(out) && !std::filesystem::is_empty(out);
  CHECK_FALSE(any_file);
}

TEST_CASE("hostile command lines: a folder as the config, a file as --output-dir, --set errors located",
          "[cli][hostile]") {
  const std::string folder = a2a::test::fresh_dir("config_folder");
  auto r = run_a2a("validate " + folder);
  CHECK(r.code == 1);
  CHECK(r.output.find("is a directory, not a file") != std::string::npos);

  std::string cfg = write_config("hostile_cli.yaml", kTextConfig);
  const std::string file = a2a::test::scratch_dir() + "/not_a_folder";
  a2a::test::write_text(file, "x");
  auto out = run_a2a("run " + cfg + " --output-dir " + file);
  INFO(out.output);
  CHECK(out.code == 2);
  CHECK(out.output.find("is a file, not a folder") != std::string::npos);
  CHECK(a2a::test::read_text(file) == "x");

  auto bogus = run_a2a("validate " + cfg + " --set bogus=1");
  CHECK(bogus.code == 1);
  CHECK(bogus.output.find("--set bogus=1: error[unknown_key]") != std::string::npos);
  auto seed = run_a2a("validate " + cfg + " --set seed=abc");
  CHECK(seed.code == 1);
  CHECK(seed.output.find("--set seed=abc: error[bad_value]") != std::string::npos);
}

TEST_CASE("a save path through a symbolic link inside the output folder is refused", "[cli][hostile]") {
  const std::string out = a2a::test::fresh_dir("symlink_out");
  const std::string elsewhere = a2a::test::fresh_dir("symlink_elsewhere");
  std::filesystem::create_directory_symlink(elsewhere, out + "/link");
  std::string text(kTextConfig);
  text.replace(text.find("save: reply.txt"), std::string("save: reply.txt").size(), "save: link/reply.txt");
  std::string cfg = write_config("symlink.yaml", text);
  auto r = run_a2a("run " + cfg + " --quiet --output-dir " + out);
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(r.output.find("error[output_path_escapes]") != std::string::npos);
  CHECK(std::filesystem::is_empty(elsewhere));
}

TEST_CASE("an output whose file type cannot hold its value fails validation, and nothing is written",
          "[cli][hostile]") {
  std::string text = std::string(kTextConfig) + "  also: {from: fmt.text, save: reply.png}\n";
  std::string cfg = write_config("save_type.yaml", text);
  const std::string out = a2a::test::fresh_dir("save_type_out");
  auto r = run_a2a("run " + cfg + " --quiet --output-dir " + out);
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(r.output.find("error[save_type_mismatch]") != std::string::npos);
  CHECK(std::filesystem::is_empty(out));
}

namespace {

// Every entry under `folder`, recursively, as paths relative to it.
std::vector<std::string> tree_of(const std::string& folder) {
  std::vector<std::string> entries;
  if (!std::filesystem::exists(folder)) return entries;
  for (const auto& e : std::filesystem::recursive_directory_iterator(folder))
    entries.push_back(std::filesystem::relative(e.path(), folder).string());
  std::sort(entries.begin(), entries.end());
  return entries;
}

const char* kTwoOutputs = R"(stages:
  - id: tone
    type: tone
    params: {seconds: 0.1, sample_rate: 16000}
  - id: mel
    type: mel_spectrogram
    params: {n_fft: 512, hop_length: 128, n_mels: 64}
    inputs: {audio: tone.audio}
outputs:
  first: {from: tone.audio, save: first.wav}
  second: {from: mel.mel, save: sub/second.mp4}
)";

}  // namespace

TEST_CASE("an output that fails to encode leaves none of the run's outputs", "[cli][hostile]") {
  // The first output encodes; the second (a generic tensor as .mp4) passes validation, which cannot know
  // the tensor's shape, and fails when it is written.
  const std::string cfg = write_config("two_outputs.yaml", kTwoOutputs);
  const std::string out = a2a::test::fresh_dir("two_outputs_out");
  auto r = run_a2a("run " + cfg + " --quiet --output-dir " + out);
  INFO(r.output);
  CHECK(r.code == 1);
  CHECK(r.output.find("error[unsupported_output_type]") != std::string::npos);
  CHECK(r.output.find(out + "/sub/second.mp4") != std::string::npos);  // the path asked for, not a staging one
  CHECK(r.output.find(".a2a-staging") == std::string::npos);
  CHECK(tree_of(out).empty());
  // Asking for the first output alone writes it, and nothing else stays behind.
  auto first = run_a2a("run " + cfg + " --quiet --output first --output-dir " + out);
  CHECK(first.code == 0);
  CHECK(tree_of(out) == std::vector<std::string>{"first.wav"});
}

TEST_CASE("concurrent runs into one output folder each publish whole files", "[cli][hostile]") {
  std::string text(kTwoOutputs);
  text.replace(text.find("seconds: 0.1"), 12, "seconds: 3.0");
  text = text.substr(0, text.find("  second:"));
  const std::string cfg = write_config("concurrent.yaml", text);
  const std::string out = a2a::test::fresh_dir("concurrent_out");
  std::string cmd;
  for (int i = 0; i < 4; ++i)
    cmd += std::string(A2A_BINARY_DIR) + "/a2a run " + cfg + " --quiet --output-dir " + out + " > /dev/null 2>&1 & ";
  cmd += "fail=0; for j in 1 2 3 4; do wait -n || fail=1; done; exit $fail";
  auto r = a2a::test::run_command("bash -c '" + cmd + "'");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(tree_of(out) == std::vector<std::string>{"first.wav"});
  CHECK(std::filesystem::file_size(out + "/first.wav") == 44 + 3 * 16000 * 2);
}

TEST_CASE("a run ended by SIGTERM at any moment leaves no staging or temporary files", "[cli][hostile]") {
  // Long enough that the signal lands before, during or after the (slow) FLAC encoding of 10 minutes of audio.
  const std::string cfg = write_config("terminated.yaml", R"(stages:
  - id: tone
    type: tone
    params: {seconds: 600.0, sample_rate: 48000}
outputs:
  audio: {from: tone.audio, save: deep/er/long.flac}
)");
  for (const char* delay : {"0.2", "0.5", "0.8", "1.2", "1.8", "2.5"}) {
    const std::string out = a2a::test::fresh_dir(std::string("terminated_out_") + delay);
    const std::string cmd = "timeout --preserve-status -s TERM " + std::string(delay) + " " +
                            std::string(A2A_BINARY_DIR) + "/a2a run " + cfg + " --quiet --output-dir " + out +
                            " > /dev/null 2>&1";
    int status = std::system(cmd.c_str());
    INFO("delay " << delay << "s, status " << status);
    REQUIRE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    CHECK((code == 0 || code == 143));
    for (const auto& entry : tree_of(out)) {
      INFO(entry);
      CHECK(entry.find(".a2a-staging") == std::string::npos);
      CHECK(entry.find(".tmp") == std::string::npos);
    }
    // Success publishes the file; a signal before publication leaves nothing. A signal that lands after the
    // rename (between publication and exit) ends the process with 143 beside a whole, published file.
    const bool published = std::filesystem::exists(out + "/deep/er/long.flac");
    if (code == 0) CHECK(published);
    if (published && code != 0) CHECK(std::filesystem::file_size(out + "/deep/er/long.flac") > 1000000);
  }
}
