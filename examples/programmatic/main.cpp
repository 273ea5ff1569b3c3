// Assembles a pipeline in C++, runs it, changes one parameter, runs it again and shows which
// stages came from the cache.
#include <iostream>

#include "pipeline/pipeline.h"
#include "pipeline/runtime.h"

namespace {

void report(const char* title, const a2a::RunResult& result) {
  std::cout << title << "\n";
  for (const auto& stage : result.stages) {
    std::cout << "  " << stage.id << " (" << stage.type << "): " << a2a::stage_status_name(stage.status) << "\n";
  }
  for (const auto& [name, value] : result.outputs) std::cout << "  output " << name << ": " << value.describe() << "\n";
}

}  // namespace

int main() {
  try {
    a2a::initialize_runtime({});

    a2a::GraphBuilder b;
    b.name("programmatic").seed(1);
    b.input("caption", a2a::ValueType::Text, a2a::Json("a test tone"));
    b.stage("pattern", "test_pattern").param("width", 96).param("height", 64).param("noise", 0.05);
    b.stage("tone", "tone").param("frequency", 440.0).param("seconds", 0.5);
    b.stage("mel", "mel_spectrogram")
        .param("n_fft", 512)
        .param("hop_length", 128)
        .param("n_mels", 64)
        .wire("audio", "tone.audio");
    b.stage("label", "text_template").param("template", "{text} at 440 Hz").wire("text", "inputs.caption");
    b.output("image", "pattern.image").output("mel", "mel.mel").output("label", "label.text");

    a2a::Pipeline pipeline(b);
    report("first run:", pipeline.run());

    pipeline.set_param("label", "template", "{text}, now described differently");
    report("after changing label.template:", pipeline.run());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
