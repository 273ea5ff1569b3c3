// configs/text_to_audio.yaml through the CLI: CLAP text encoder -> audio diffusion -> VAE decoder ->
// HiFi-GAN -> WAV, with the tiny built-in presets.
#include "test_support.h"

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "media/audio_io.h"

namespace {

namespace fs = std::filesystem;

int run_text_to_audio(const fs::path& out_dir, const std::string& env, const std::string& options = "") {
  return a2a::test::run_shipped_config("text_to_audio.yaml", out_dir.string(), env, "--quiet " + options);
}

}  // namespace

TEST_CASE("e2e: configs/text_to_audio.yaml writes a 16 kHz WAV of the requested duration", "[e2e_text_to_audio]") {
  const fs::path base = fs::path(a2a::test::scratch_dir()) / "text_to_audio";
  fs::create_directories(base);
  const fs::path first = base / "first";
  REQUIRE(run_text_to_audio(first, "MODEL= SCHEDULER=") == 0);
  const fs::path wav = first / "audio.wav";
  REQUIRE(fs::exists(wav));
  a2a::AudioData audio = a2a::read_audio(wav.string());
  // duration: 1.0 s in the config; the vocoder's 16 kHz.
  CHECK(audio.sample_rate == 16000);
  REQUIRE(audio.samples.dim() == 2);
  CHECK(audio.samples.size(0) == 1);
  CHECK(audio.samples.size(1) == 16000);
  CHECK(audio.samples.abs().max().item<double>() <= 1.0);
  // Vocoded noise, not silence.
  CHECK(audio.samples.std().item<double>() > 1e-4);

  // An unknown sampler is a configuration error, reported before anything runs.
  const fs::path bad = base / "bad";
  CHECK(run_text_to_audio(bad, "MODEL= SCHEDULER=no_such_sampler") != 0);
  CHECK_FALSE(fs::exists(bad / "audio.wav"));

  // Another duration through --set gives another length; the same seed gives the same samples.
  const fs::path shorter = base / "shorter";
  REQUIRE(run_text_to_audio(shorter, "MODEL= SCHEDULER=",
                            "--set stages.denoise.duration=0.32 --set stages.vocode.duration=0.32") == 0);
  a2a::AudioData short_audio = a2a::read_audio((shorter / "audio.wav").string());
  CHECK(short_audio.samples.size(1) == 5120);
  const fs::path again = base / "again";
  REQUIRE(run_text_to_audio(
              again, "MODEL= SCHEDULER=", "--set stages.denoise.duration=0.32 --set stages.vocode.duration=0.32") == 0);
  CHECK(torch::equal(a2a::read_audio((again / "audio.wav").string()).samples, short_audio.samples));
}

TEST_CASE("e2e: configs/text_to_audio.yaml gives other samples for another pipeline seed", "[e2e_text_to_audio]") {
  const fs::path base = fs::path(a2a::test::scratch_dir()) / "text_to_audio_seeds";
  fs::create_directories(base);
  const std::string shorter = "--set stages.denoise.duration=0.32 --set stages.vocode.duration=0.32 ";
  REQUIRE(run_text_to_audio(base / "seven", "MODEL= SCHEDULER=", shorter + "--set seed=7") == 0);
  REQUIRE(run_text_to_audio(base / "eight", "MODEL= SCHEDULER=", shorter + "--set seed=8") == 0);
  auto seven = a2a::read_audio((base / "seven" / "audio.wav").string()).samples;
  auto eight = a2a::read_audio((base / "eight" / "audio.wav").string()).samples;
  REQUIRE(seven.sizes() == eight.sizes());
  CHECK_FALSE(torch::equal(seven, eight));
}
