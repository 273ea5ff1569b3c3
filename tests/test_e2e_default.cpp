// The default config runs end to end through the CLI and writes its files.
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "media/audio_io.h"
#include "media/image_io.h"
#include "pipeline/config_loader.h"
#include "test_support.h"

TEST_CASE("configs/default.yaml runs and writes an image, a WAV and a caption", "[e2e]") {
  const std::string out = a2a::test::scratch_dir() + "/default_out";
  const std::string log = a2a::test::scratch_dir() + "/default.log";
  const std::string cmd = std::string(A2A_BINARY_DIR) + "/a2a run " + std::string(A2A_SOURCE_DIR) +
                          "/configs/default.yaml --output-dir " + out + " > " + log + " 2>&1";
  int status = std::system(cmd.c_str());
  std::ifstream in(log);
  INFO(std::string(std::istreambuf_iterator<char>(in), {}));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto image = a2a::read_image(out + "/image_224.png");
  CHECK(image.size(-1) == 224);
  CHECK(image.size(-2) == 224);
  CHECK(image.std().item<double>() > 0.05);  // a pattern, not a flat image
  REQUIRE(std::filesystem::exists(out + "/tone_griffin_lim.wav"));
  CHECK(std::filesystem::file_size(out + "/tone_griffin_lim.wav") > 16000);
  std::ifstream caption(out + "/caption.txt");
  std::string text((std::istreambuf_iterator<char>(caption)), {});
  CHECK(text.find("440 Hz") != std::string::npos);
}

// A stage seed in a shipped config would override the run's seed (--set seed=N) for that stage.
TEST_CASE("shipped configs leave every stage seed at the run's seed", "[e2e]") {
  int configs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(A2A_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    ++configs;
    const a2a::GraphSpec spec = a2a::load_graph_yaml(entry.path().string()).spec();
    for (const auto& stage : spec.stages) {
      INFO(entry.path().filename().string() << ": stage " << stage.id);
      if (stage.params.contains("seed")) CHECK(stage.params["seed"] == -1);
    }
  }
  CHECK(configs >= 4);
}
