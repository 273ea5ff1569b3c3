// The configs where media goes in, through the CLI with the tiny presets: image_to_text, video_to_text (an
// MP4 with sound, and one without), text_to_audio_t5 and embed.
#include <torch/torch.h>

#include <filesystem>

#include "media/audio_io.h"
#include "media/image_io.h"
#include "media/video_audio.h"
#include "media/video_io.h"
#include "test_support.h"
#include "weights/safetensors.h"

namespace {

namespace fs = std::filesystem;

// `a2a run configs/CONFIG` with ENV before it: its exit status, stdout and stderr.
a2a::test::CommandResult run_media_config(const std::string& config, const fs::path& out_dir, const std::string& env,
                                          const std::string& options) {
  return a2a::test::run_command(env + " " + std::string(A2A_BINARY_DIR) + "/a2a run " + std::string(A2A_SOURCE_DIR) +
                                "/configs/" + config + " --output-dir " + out_dir.string() + " " + options);
}

// The line of the final per-stage summary that names the stage, or "".
std::string summary_line(const std::string& log, const std::string& stage) {
  size_t at = 0;
  std::string found;
  while ((at = log.find("\n", at)) != std::string::npos) {
    const size_t end = log.find('\n', at + 1);
    const std::string line = log.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    if (line.find(" " + stage + " ") != std::string::npos || line.rfind(stage + " ", 0) == 0) found = line;
    at = end;
  }
  return found;
}

at::Tensor media_in_frames(int64_t count) {
  torch::manual_seed(5);
  return torch::rand({count, 3, 48, 64});
}

at::Tensor media_in_tone(int64_t samples, int64_t rate) {
  return (0.3 * torch::sin(torch::arange(samples).to(at::kFloat) * (2 * M_PI * 330.0 / rate))).unsqueeze(0);
}

}  // namespace

TEST_CASE("e2e: configs/image_to_text.yaml reads an image at the prompt's marker", "[e2e_media_in]") {
  const fs::path base = fs::path(a2a::test::fresh_dir("e2e_image_to_text"));
  const std::string photo = (base / "photo.png").string();
  a2a::write_image(torch::rand({3, 40, 56}), photo);
  const fs::path out = base / "out";
  const auto run = run_media_config("image_to_text.yaml", out, "VISION= LLM= PROJECTION=", "--input image=" + photo);
  INFO(run.output);
  REQUIRE(run.code == 0);
  CHECK(run.output.find("output text: absent") == std::string::npos);
  // Without models every model stage runs its tiny preset, and the timing table says so.
  CHECK(summary_line(run.output, "see").find("tiny preset") != std::string::npos);
  CHECK(summary_line(run.output, "llm").find("tiny preset") != std::string::npos);
  for (const char* stage : {"see", "project", "llm"})
    CHECK(summary_line(run.output, stage).find("skipped") == std::string::npos);
  // Without an image the encoder and the projection are skipped and the LLM answers the text alone.
  const fs::path blind = base / "blind";
  const auto blind_run = run_media_config("image_to_text.yaml", blind, "VISION= LLM= PROJECTION=", "");
  const std::string& blind_log = blind_run.output;
  INFO(blind_log);
  REQUIRE(blind_run.code == 0);
  CHECK(summary_line(blind_log, "see").find("skipped") != std::string::npos);
}

TEST_CASE("e2e: configs/video_to_text.yaml decodes the frames and the sound track of an MP4", "[e2e_media_in]") {
  const fs::path base = fs::path(a2a::test::fresh_dir("e2e_video_to_text"));
  const std::string clip = (base / "clip.mp4").string();
  a2a::write_video_with_audio(clip, media_in_frames(12), 4.0, a2a::AudioData{media_in_tone(48000, 16000), 16000});
  REQUIRE(a2a::read_video_audio_track(clip).has_value());
  const fs::path out = base / "out";
  const auto run = run_media_config("video_to_text.yaml", out, "IMAGEBIND= LLM= PROJECTION=", "--input video=" + clip);
  const std::string& log = run.output;
  INFO(log);
  REQUIRE(run.code == 0);
  for (const char* stage : {"see", "sound", "hear", "project_video", "project_audio", "llm"}) {
    INFO("stage " << stage);
    const std::string line = summary_line(log, stage);
    CHECK_FALSE(line.empty());
    CHECK(line.find("skipped") == std::string::npos);
  }

  // Without sound the audio branch is skipped, not failed, and the LLM still answers.
  const std::string silent = (base / "silent.mp4").string();
  a2a::write_video(silent, media_in_frames(12), 4.0);
  REQUIRE_FALSE(a2a::read_video_audio_track(silent).has_value());
  const fs::path quiet = base / "quiet";
  const auto quiet_run =
      run_media_config("video_to_text.yaml", quiet, "IMAGEBIND= LLM= PROJECTION=", "--input video=" + silent);
  const std::string& quiet_log = quiet_run.output;
  INFO(quiet_log);
  REQUIRE(quiet_run.code == 0);
  CHECK(summary_line(quiet_log, "hear").find("skipped") != std::string::npos);
  CHECK(summary_line(quiet_log, "see").find("skipped") == std::string::npos);
  CHECK(summary_line(quiet_log, "llm").find("skipped") == std::string::npos);
}

TEST_CASE("e2e: configs/text_to_audio_t5.yaml writes a WAV from T5 states", "[e2e_media_in]") {
  const fs::path base = fs::path(a2a::test::fresh_dir("e2e_text_to_audio_t5"));
  REQUIRE(a2a::test::run_shipped_config("text_to_audio_t5.yaml", (base / "first").string(),
                                        "T5= MODEL= SCHEDULER=", "--quiet") == 0);
  const a2a::AudioData audio = a2a::read_audio((base / "first/audio.wav").string());
  CHECK(audio.sample_rate == 16000);
  CHECK(audio.samples.size(1) == 16000);
  CHECK(audio.samples.std().item<double>() > 1e-4);
  // Another prompt, other samples; the same prompt, the same bytes.
  REQUIRE(a2a::test::run_shipped_config("text_to_audio_t5.yaml", (base / "other").string(),
                                        "T5= MODEL= SCHEDULER=", "--quiet --input prompt=thunder") == 0);
  CHECK_FALSE(torch::equal(a2a::read_audio((base / "other/audio.wav").string()).samples, audio.samples));
  REQUIRE(a2a::test::run_shipped_config("text_to_audio_t5.yaml", (base / "again").string(),
                                        "T5= MODEL= SCHEDULER=", "--quiet") == 0);
  CHECK(a2a::test::read_text((base / "again/audio.wav").string()) ==
        a2a::test::read_text((base / "first/audio.wav").string()));
}

TEST_CASE("e2e: configs/embed.yaml saves ImageBind embeddings and prints their similarities", "[e2e_media_in]") {
  const fs::path base = fs::path(a2a::test::fresh_dir("e2e_embed"));
  const std::string image = (base / "dog.png").string(), sound = (base / "bark.wav").string();
  const std::string video = (base / "clip.mp4").string();
  a2a::write_image(torch::rand({3, 32, 32}), image);
  a2a::write_audio(sound, media_in_tone(16000, 16000), 16000);
  a2a::write_video(video, media_in_frames(12), 4.0);
  const fs::path out = base / "out";
  const a2a::test::CommandResult run = a2a::test::run_a2a(
      "run " + std::string(A2A_SOURCE_DIR) + "/configs/embed.yaml --output-dir " + out.string() +
      " --quiet --input 'text=a dog' --input image=" + image + " --input audio=" + sound + " --input video=" + video);
  INFO(run.output);
  REQUIRE(run.code == 0);
  for (const char* name : {"text", "image", "audio", "video"}) {
    INFO(name);
    const auto tensors = a2a::load_safetensors((out / (std::string(name) + ".safetensors")).string());
    REQUIRE(tensors.count("embedding"));
    CHECK(tensors.at("embedding").dim() == 3);
    CHECK(tensors.at("embedding").size(1) == 1);
  }
  CHECK(run.output.find("cosine similarity") != std::string::npos);
  CHECK(run.output.find("1.0000") != std::string::npos);  // each input with itself

  // Only the inputs given: the others are absent, left out of the table, and nothing is written for them.
  const fs::path some = base / "some";
  const a2a::test::CommandResult partial =
      a2a::test::run_a2a("run " + std::string(A2A_SOURCE_DIR) + "/configs/embed.yaml --output-dir " + some.string() +
                         " --quiet --input 'text=a dog' --input image=" + image);
  INFO(partial.output);
  REQUIRE(partial.code == 0);
  CHECK(fs::exists(some / "image.safetensors"));
  CHECK_FALSE(fs::exists(some / "audio.safetensors"));
  CHECK(partial.output.find("output audio: absent") != std::string::npos);
}
