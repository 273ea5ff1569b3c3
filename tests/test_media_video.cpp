// Video files: MP4/AVI/MKV/GIF/PNG-folder round trips, uniform frame and clip sampling, bad files.
#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "media/image_io.h"
#include "media/video_audio.h"
#include "media/video_io.h"
#include "stages/media_file.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

std::string video_dir(const std::string& name) {
  fs::path dir = fs::path(a2a::test::scratch_dir()) / ("video_" + name);
  fs::create_directories(dir);
  return dir.string();
}

using a2a::test::read_text;
using a2a::test::write_text;

// Frame t is a flat grey of level (t + 1) * step: the level identifies the frame after lossy coding.
constexpr double kLevelStep = 18.0 / 255.0;
at::Tensor numbered_frames(int64_t count, int64_t h, int64_t w) {
  auto levels = at::arange(1, count + 1, at::kFloat).mul(kLevelStep).view({count, 1, 1, 1});
  return levels.expand({count, 3, h, w}).contiguous();
}

int64_t frame_number(const at::Tensor& frame) {
  return static_cast<int64_t>(std::lround(frame.mean().item<double>() / kLevelStep)) - 1;
}

}  // namespace

TEST_CASE("MP4 (H.264), AVI and MKV round-trip frames, fps and duration", "[media_video]") {
  const auto dir = video_dir("roundtrip");
  auto frames = numbered_frames(12, 32, 48);
  for (const char* name : {"clip.mp4", "clip.avi", "clip.mkv"}) {
    INFO(name);
    const std::string path = dir + "/" + name;
    auto result = a2a::write_video(path, frames, 8.0);
    CHECK(!result.fallback);
    if (std::string(name) == "clip.mp4") CHECK(result.format == a2a::VideoWriteFormat::Mp4H264);
    auto info = a2a::probe_video(path);
    CHECK(info.frame_count == 12);
    CHECK(info.fps == Approx(8.0));
    CHECK(info.duration_seconds() == Approx(1.5));
    CHECK(info.width == 48);
    CHECK(info.height == 32);
    auto back = a2a::read_video(path);
    REQUIRE(back.frames.sizes() == frames.sizes());
    CHECK(back.fps == Approx(8.0));
    CHECK(back.frames.sub(frames).abs().mean().item<float>() < 3.0f / 255);
    for (int64_t t = 0; t < 12; ++t) CHECK(frame_number(back.frames[t]) == t);
  }
}

TEST_CASE("MP4 and MOV are H.264 yuv420p with the index first, as a browser's <video> wants", "[media_video]") {
  const auto dir = video_dir("browser");
  struct Case {
    const char* name;
    int64_t frames, height, width;
    double fps;
  };
  for (const Case& c : {Case{"a.mp4", 9, 20, 34, 12.5}, Case{"b.mp4", 13, 32, 48, 16.0}, Case{"c.mov", 5, 16, 16, 8.0},
                        Case{"odd.mp4", 6, 21, 35, 10.0}}) {
    INFO(c.name);
    const std::string path = dir + "/" + c.name;
    const auto result = a2a::write_video(path, numbered_frames(c.frames, c.height, c.width), c.fps);
    const a2a::VideoStreamProbe probe = a2a::probe_video_file(path);
    CHECK(probe.video_codec == (result.format == a2a::VideoWriteFormat::Mp4H264 ? "h264" : "mpeg4"));
    CHECK(probe.pixel_format == "yuv420p");
    CHECK(probe.frames == c.frames);
    CHECK(probe.fps == Approx(c.fps));
    CHECK(probe.index_first);
    CHECK(probe.audio_codec.empty());
    // An odd side is padded by one repeated row or column, and the note says so.
    CHECK(probe.width == c.width + c.width % 2);
    CHECK(probe.height == c.height + c.height % 2);
    CHECK((result.note.find("padded") != std::string::npos) == (c.width % 2 || c.height % 2));
    const auto back = a2a::read_video(path);
    CHECK(back.frames.size(0) == c.frames);
    for (int64_t t = 0; t < c.frames; ++t) CHECK(frame_number(back.frames[t]) == t);
  }
  const std::string sound = dir + "/sound.mp4";
  a2a::write_video_with_audio(sound, numbered_frames(8, 16, 16), 8.0, a2a::AudioData{at::zeros({1, 16000}), 16000});
  CHECK(a2a::probe_video_file(sound).audio_codec == "aac");
  CHECK(a2a::probe_video_file(sound).index_first);
  const std::string bytes = read_text(sound);
  write_text(dir + "/cut.mp4", bytes.substr(0, bytes.size() / 3));
  a2a::test::require_input_error([&] { a2a::probe_video_file(dir + "/cut.mp4"); }, "truncated_file", dir + "/cut.mp4");
  write_text(dir + "/junk.mp4", std::string(4096, 'q'));
  a2a::test::require_input_error([&] { a2a::probe_video_file(dir + "/junk.mp4"); }, "corrupt_file", dir + "/junk.mp4");
}

TEST_CASE("animated GIF and PNG frame folders are written where MP4 is not wanted", "[media_video]") {
  const auto dir = video_dir("gif_png");
  // Colours on the GIF palette's grid (r, b in fifths, g in sixths) come back exactly.
  auto frames = at::zeros({3, 3, 6, 10});
  for (int64_t t = 0; t < 3; ++t) {
    frames[t][0].fill_(t / 5.0);
    frames[t][1].fill_((t + 2) / 6.0);
    frames[t][2].fill_(1.0 - t / 5.0);
  }
  auto gif = a2a::write_video(dir + "/anim.gif", frames, 4.0);
  CHECK(gif.format == a2a::VideoWriteFormat::Gif);
  CHECK(read_text(dir + "/anim.gif").substr(0, 6) == "GIF89a");
  auto back = a2a::read_video(dir + "/anim.gif");
  REQUIRE(back.frames.sizes() == frames.sizes());
  CHECK(back.frames.sub(frames).abs().max().item<float>() <= 0.5f / 255 + 1e-6f);
  CHECK(back.fps == Approx(4.0));

  // Larger, noisy frames exercise the LZW code-width growth and dictionary resets.
  auto noisy = at::rand({2, 3, 64, 96});
  a2a::write_gif(dir + "/noisy.gif", noisy, 10.0);
  auto noisy_back = a2a::read_video(dir + "/noisy.gif");
  REQUIRE(noisy_back.frames.sizes() == noisy.sizes());
  CHECK(noisy_back.frames.sub(noisy).abs().max().item<float>() <= 0.5f / 5 + 1.0f / 255);

  auto folder = a2a::write_video(dir + "/frames/", frames, 4.0);
  CHECK(folder.format == a2a::VideoWriteFormat::PngFrames);
  CHECK(fs::exists(dir + "/frames/000002.png"));
  CHECK(at::allclose(a2a::read_image(dir + "/frames/000001.png"), frames[1], 0, 0.5 / 255 + 1e-6));
}

TEST_CASE("uniform frame and clip sampling pick the expected frames", "[media_video]") {
  CHECK(a2a::uniform_frame_indices(12, 4) == std::vector<int64_t>({0, 3, 7, 11}));
  CHECK(a2a::uniform_frame_indices(3, 5) == std::vector<int64_t>({0, 0, 1, 1, 2}));
  CHECK(a2a::uniform_frame_indices(10, 1) == std::vector<int64_t>({0}));

  const auto dir = video_dir("sampling");
  a2a::write_video(dir + "/count.mp4", numbered_frames(12, 16, 16), 8.0);
  auto sampled = a2a::sample_frames_uniform(dir + "/count.mp4", 4);
  REQUIRE(sampled.frames.size(0) == 4);
  std::vector<int64_t> numbers;
  for (int64_t i = 0; i < 4; ++i) numbers.push_back(frame_number(sampled.frames[i]));
  CHECK(numbers == std::vector<int64_t>({0, 3, 7, 11}));

  // 1.5 s at 8 fps, 2 clips of 0.5 s (4 frames each), 2 frames per clip: starts at 0 s and 0.5 s.
  a2a::ClipSampling sampling;
  sampling.clips = 2;
  sampling.clip_seconds = 0.5;
  sampling.frames_per_clip = 2;
  a2a::VideoInfo info;
  auto clips = a2a::sample_clips_uniform(dir + "/count.mp4", sampling, &info);
  REQUIRE(clips.sizes() == at::IntArrayRef({2, 2, 3, 16, 16}));
  CHECK(frame_number(clips[0][0]) == 0);
  CHECK(frame_number(clips[0][1]) == 3);
  CHECK(frame_number(clips[1][0]) == 4);
  CHECK(frame_number(clips[1][1]) == 7);
  CHECK(info.frame_count == 12);

  // A clip longer than the video repeats the last frame.
  sampling.clips = 1;
  sampling.clip_seconds = 3.0;
  sampling.frames_per_clip = 0;
  auto long_clip = a2a::uniform_clip_frame_indices(info, sampling)[0];
  REQUIRE(long_clip.size() == 24);
  CHECK(long_clip.front() == 0);
  CHECK(long_clip.back() == 11);

  auto picked = a2a::read_video_frames(dir + "/count.mp4", {5, 1, 5});
  CHECK(frame_number(picked.frames[0]) == 5);
  CHECK(frame_number(picked.frames[1]) == 1);
  a2a::test::require_input_error([&] { a2a::read_video_frames(dir + "/count.mp4", {40}); }, "bad_index",
                                 dir + "/count.mp4");
}

TEST_CASE("video values save and load through the media file functions", "[media_video]") {
  const auto dir = video_dir("values");
  auto frames = numbered_frames(6, 16, 24).unsqueeze(0);
  auto saved = a2a::save_value(a2a::Value::video(frames, 6.0), dir + "/out.mp4");
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].format == "MP4 (H.264 avc1)");
  CHECK(saved[0].note.empty());
  auto v = a2a::load_media_value(dir + "/out.mp4", a2a::ValueType::Video);
  CHECK(v.type() == a2a::ValueType::Video);
  CHECK(v.fps() == Approx(6.0));
  REQUIRE(v.tensor().sizes() == frames.sizes());
  auto gif = a2a::save_value(a2a::Value::video(frames, 6.0), dir + "/out.gif");
  CHECK(gif[0].format == "animated GIF");
}

TEST_CASE("bad video files give clear errors", "[media_video]") {
  const auto dir = video_dir("bad");
  auto frames = numbered_frames(8, 16, 16);
  a2a::write_video(dir + "/ok.mp4", frames, 8.0);
  a2a::write_video(dir + "/ok.avi", frames, 8.0);

  a2a::test::require_input_error([&] { a2a::read_video(dir + "/none.mp4"); }, "file_not_found", dir + "/none.mp4");
  write_text(dir + "/empty.mp4", "");
  a2a::test::require_input_error([&] { a2a::read_video(dir + "/empty.mp4"); }, "empty_file", dir + "/empty.mp4");
  write_text(dir + "/garbage.mp4", std::string(2048, 'z'));
  a2a::test::require_input_error([&] { a2a::probe_video(dir + "/garbage.mp4"); }, "corrupt_file", dir + "/garbage.mp4");
  write_text(dir + "/garbage.mkv", std::string(2048, 'z'));
  a2a::test::require_input_error([&] { a2a::read_video(dir + "/garbage.mkv"); }, "corrupt_file", dir + "/garbage.mkv");
  // 32 bytes: an 'ftyp' box, then a box whose 64-bit size is 2^64 - 16. pos + size wrapped and walked
  // backwards forever.
  std::string wrap = std::string(
                         "\0\0\0\x10"
                         "ftypisom\0\0\0\0",
                         16) +
                     std::string("\0\0\0\x01mdat", 8) + std::string("\xff\xff\xff\xff\xff\xff\xff\xf0", 8);
  REQUIRE(wrap.size() == 32);
  write_text(dir + "/wrap.mp4", wrap);
  a2a::test::require_input_error([&] { a2a::read_video(dir + "/wrap.mp4"); }, "truncated_file", dir + "/wrap.mp4");
  std::string small = wrap.substr(0, 24) + std::string("\0\0\0\0\0\0\0\x0c", 8);  // 64-bit size 12 < 16
  write_text(dir + "/small.mp4", small);
  a2a::test::require_input_error([&] { a2a::read_video(dir + "/small.mp4"); }, "corrupt_file", dir + "/small.mp4");
  for (const char* name : {"ok.mp4", "ok.avi"}) {
    const std::string bytes = read_text(dir + "/" + name);
    const std::string cut = dir + "/cut_" + name;
    write_text(cut, bytes.substr(0, bytes.size() / 2));
    a2a::test::require_input_error([&] { a2a::read_video(cut); }, "truncated_file", cut);
  }
  a2a::test::require_input_error(
      [&] {
        a2a::write_video(dir + "/x.mp4", at::zeros({4, 16, 16}), 8.0);
      },
      "bad_shape", dir + "/x.mp4");
  a2a::test::require_input_error([&] { a2a::write_video(dir + "/x.mp4", frames, 0.0); }, "bad_fps", dir + "/x.mp4");
  a2a::test::require_input_error([&] { a2a::write_video(dir + "/x.flv", frames, 8.0); }, "unsupported_format",
                                 dir + "/x.flv");
}

TEST_CASE("decoding a video is bounded by pixels a frame and in all", "[media_video][hostile]") {
  const std::string path = video_dir("bounded") + "/ten.avi";
  a2a::write_video(path, numbered_frames(10, 16, 24), 5);
  const uint64_t frame = 16 * 24;
  CHECK(a2a::read_video(path, 0, {frame, 10 * frame}).frames.size(0) == 10);
  auto expect_too_large = [&](auto read, const std::string& says) {
    try {
      read();
      FAIL("read past the bound");
    } catch (const a2a::Error& e) {
      INFO(e.message());
      CHECK(e.code() == "too_large");
      CHECK(e.message().find(path) != std::string::npos);
      CHECK(e.message().find(says) != std::string::npos);
    }
  };
  expect_too_large([&] { a2a::read_video(path, 0, {frame - 1, uint64_t(1) << 30}); }, "24 x 16 frames");
  expect_too_large([&] { a2a::read_video(path, 0, {frame, 3 * frame}); }, "4 frames hold 1536 pixels");
  CHECK(a2a::read_video(path, 3, {frame, 3 * frame}).frames.size(0) == 3);  // asking for fewer stays inside
  expect_too_large([&] { a2a::read_video_frames(path, {0, 1, 2, 3}, {frame, 3 * frame}); }, "4 frames hold");
  CHECK(a2a::read_video_frames(path, {9, 0, 4}, {frame, 3 * frame}).frames.size(0) == 3);
}
