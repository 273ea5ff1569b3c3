// A video's audio track: MP4/MOV/MKV with AAC written and read back (spectrum and correlation, the frames
// through the OpenCV reader), videos without audio, and hostile files.
#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "media/audio_io.h"
#include "media/video_audio.h"
#include "media/video_io.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

std::string av_dir(const std::string& name) { return a2a::test::fresh_dir("video_audio_" + name); }

// Channel c is a sine of frequencies[c] Hz at amplitude 0.5.
a2a::AudioData av_sines(const std::vector<double>& frequencies, int64_t rate, double seconds) {
  const auto n = static_cast<int64_t>(std::llround(rate * seconds));
  const at::Tensor t = at::arange(n, at::kDouble) / double(rate);
  std::vector<at::Tensor> channels;
  for (double f : frequencies) channels.push_back(at::sin(t * (2 * M_PI * f)).mul(0.5));
  return {at::stack(channels).to(at::kFloat), rate};
}

// Frame t is a flat grey of level (t + 1) * 18 / 255, which survives lossy coding.
at::Tensor av_numbered_frames(int64_t count, int64_t h, int64_t w) {
  auto levels = at::arange(1, count + 1, at::kFloat).mul(18.0 / 255).view({count, 1, 1, 1});
  return levels.expand({count, 3, h, w}).contiguous();
}

int64_t av_frame_number(const at::Tensor& frame) {
  return static_cast<int64_t>(std::lround(frame.mean().item<double>() * 255 / 18)) - 1;
}

double av_dominant_frequency(const at::Tensor& channel, int64_t rate) {
  const at::Tensor spectrum = at::fft_rfft(channel.to(at::kDouble)).abs();
  return spectrum.argmax().item<int64_t>() * double(rate) / channel.size(0);
}

// The correlation of decoded[lag:] with written.
double av_correlation(const at::Tensor& decoded, const at::Tensor& written, int64_t lag) {
  const int64_t n = std::min(decoded.size(0) - lag, written.size(0));
  const at::Tensor x = decoded.slice(0, lag, lag + n).to(at::kDouble), y = written.slice(0, 0, n).to(at::kDouble);
  const at::Tensor xc = x - x.mean(), yc = y - y.mean();
  return (xc * yc).sum().item<double>() / std::sqrt((xc * xc).sum().item<double>() * (yc * yc).sum().item<double>());
}

// The byte offset of the audio track's 'mdhd' duration (version 0): the 'mdhd' box whose next 'hdlr' is 'soun'.
size_t audio_mdhd_duration_offset(const std::string& mp4) {
  for (size_t at = mp4.find("mdhd"); at != std::string::npos; at = mp4.find("mdhd", at + 4)) {
    const size_t hdlr = mp4.find("hdlr", at);
    if (hdlr != std::string::npos && mp4.compare(hdlr + 12, 4, "soun") == 0 && mp4[at + 4] == 0) return at + 20;
  }
  return std::string::npos;
}

}  // namespace

TEST_CASE("a 440 Hz sine muxed with frames reads back with its rate and channels and length and spectrum",
          "[video_audio]") {
  const auto dir = av_dir("roundtrip");
  struct Case {
    const char* name;
    std::vector<double> frequencies;
    int64_t rate;
    int64_t priming;  // leading samples of the encoder's delay that the container does not trim
    a2a::VideoWriteFormat video = a2a::VideoWriteFormat::Mp4H264;
  };
  // MP4 and MOV trim the AAC encoder's 1024 priming samples with an edit list; FFmpeg 5.1's Matroska
  // muxer records that delay only for Opus, so in MKV they stay.
  for (const Case& c : {Case{"mono16k.mp4", {440.0}, 16000, 0}, Case{"stereo44k.mp4", {440.0, 660.0}, 44100, 0},
                        Case{"stereo48k.mov", {440.0, 660.0}, 48000, 0}, Case{"mono22k.mkv", {440.0}, 22050, 1024},
                        Case{"mpeg4_mono16k.mp4", {440.0}, 16000, 0, a2a::VideoWriteFormat::Mp4Mpeg4}}) {
    INFO(c.name);
    const std::string path = dir + "/" + c.name;
    const a2a::AudioData sine = av_sines(c.frequencies, c.rate, 1.0);
    const at::Tensor frames = av_numbered_frames(8, 32, 48);
    const auto written = a2a::write_video_with_audio(path, frames, 8.0, sine, c.video);
    CHECK(written.path == path);
    if (c.video == a2a::VideoWriteFormat::Mp4Mpeg4) CHECK(written.format == a2a::VideoWriteFormat::Mp4Mpeg4);
    INFO(a2a::video_write_format_name(written.format));

    const auto audio = a2a::read_video_audio_track(path);
    REQUIRE(audio.has_value());
    CHECK(audio->sample_rate == c.rate);
    REQUIRE(audio->samples.dim() == 2);
    REQUIRE(audio->samples.size(0) == int64_t(c.frequencies.size()));
    // AAC codes whole frames of 1024 samples.
    CHECK(std::abs(audio->samples.size(1) - c.priming - sine.samples.size(1)) <= 1024);
    for (size_t ch = 0; ch < c.frequencies.size(); ++ch) {
      INFO("channel " << ch);
      CHECK(std::abs(av_dominant_frequency(audio->samples[ch], c.rate) - c.frequencies[ch]) < 2.0);
      const double r = av_correlation(audio->samples[ch], sine.samples[ch], c.priming);
      INFO("correlation " << r);
      CHECK(r > 0.99);
    }

    const auto video = a2a::read_video(path);
    REQUIRE(video.frames.sizes() == frames.sizes());
    CHECK(video.fps == Approx(8.0));
    CHECK(video.frames.sub(frames).abs().mean().item<float>() < 3.0f / 255);
    for (int64_t t = 0; t < frames.size(0); ++t) CHECK(av_frame_number(video.frames[t]) == t);
  }
}

TEST_CASE("a video without an audio track or with an empty one has no audio and that is not an error",
          "[video_audio]") {
  const auto dir = av_dir("silent");
  const at::Tensor frames = av_numbered_frames(6, 16, 16);
  for (const char* name : {"opencv.mp4", "opencv.avi", "opencv.mkv", "opencv.gif"}) {
    INFO(name);
    a2a::write_video(dir + "/" + name, frames, 6.0);
    CHECK_FALSE(a2a::read_video_audio_track(dir + "/" + name).has_value());
  }
  const std::string empty = dir + "/empty_track.mp4";
  a2a::write_video_with_audio(empty, frames, 6.0, {at::zeros({2, 0}), 16000});
  CHECK_FALSE(a2a::read_video_audio_track(empty).has_value());
  CHECK(a2a::read_video(empty).frames.size(0) == 6);
}

TEST_CASE("decoding a track is bounded by what decodes and not by the duration the header claims",
          "[video_audio][hostile]") {
  const auto dir = av_dir("bounded");
  const std::string path = dir + "/claims.mp4";
  a2a::write_video_with_audio(path, av_numbered_frames(4, 16, 16), 4.0, av_sines({440.0, 660.0}, 16000, 1.0));
  std::string bytes = a2a::test::read_text(path);
  const size_t duration = audio_mdhd_duration_offset(bytes);
  REQUIRE(duration != std::string::npos);
  bytes.replace(duration, 4, "\xff\xff\xff\xff");  // 2^32 - 1 ticks of 1/16000 s: 74 hours, 2^33 samples
  a2a::test::write_text(path, bytes);
  const auto audio = a2a::read_video_audio_track(path);
  REQUIRE(audio.has_value());
  CHECK(std::abs(audio->samples.size(1) - 16000) <= 1024);

  const uint64_t decoded = uint64_t(audio->samples.numel());
  CHECK(a2a::read_video_audio_track(path, {decoded}).has_value());
  try {
    a2a::read_video_audio_track(path, {decoded - 1});
    FAIL("read past the bound");
  } catch (const a2a::Error& e) {
    INFO(e.message());
    CHECK(e.code() == "too_large");
    CHECK(e.message().find(path) != std::string::npos);
    CHECK(e.message().find(std::to_string(decoded - 1) + " samples") != std::string::npos);
  }
}

TEST_CASE("bad files give clear errors from the audio track reader", "[video_audio][hostile]") {
  const auto dir = av_dir("bad");
  const std::string ok = dir + "/ok.mp4";
  a2a::write_video_with_audio(ok, av_numbered_frames(4, 16, 16), 4.0, av_sines({440.0}, 16000, 0.5));
  const std::string bytes = a2a::test::read_text(ok);

  a2a::test::require_input_error([&] { a2a::read_video_audio_track(dir + "/none.mp4"); }, "file_not_found",
                                 dir + "/none.mp4");
  fs::create_directories(dir + "/folder.mp4");
  a2a::test::require_input_error([&] { a2a::read_video_audio_track(dir + "/folder.mp4"); }, "not_a_file",
                                 dir + "/folder.mp4");
  a2a::test::write_text(dir + "/empty.mp4", "");
  a2a::test::require_input_error([&] { a2a::read_video_audio_track(dir + "/empty.mp4"); }, "empty_file",
                                 dir + "/empty.mp4");
  for (const char* name : {"garbage.mp4", "garbage.mkv", "garbage.avi", "garbage.bin"}) {
    const std::string path = dir + "/" + name;
    a2a::test::write_text(path, std::string(4096, 'z'));
    a2a::test::require_input_error([&] { a2a::read_video_audio_track(path); }, "corrupt_file", path);
  }
  for (size_t keep : {bytes.size() / 2, bytes.size() - 1, size_t(40)}) {
    const std::string cut = dir + "/cut" + std::to_string(keep) + ".mp4";
    a2a::test::write_text(cut, bytes.substr(0, keep));
    a2a::test::require_input_error([&] { a2a::read_video_audio_track(cut); }, "truncated_file", cut);
  }
  // The box walk passes a file whose audio samples are overwritten; the decoder does not.
  std::string scrambled = bytes;
  const size_t mdat = scrambled.find("mdat");
  REQUIRE(mdat != std::string::npos);
  const size_t mdat_size = (uint8_t(scrambled[mdat - 4]) << 24) | (uint8_t(scrambled[mdat - 3]) << 16) |
                           (uint8_t(scrambled[mdat - 2]) << 8) | uint8_t(scrambled[mdat - 1]);
  REQUIRE(mdat - 4 + mdat_size <= scrambled.size());
  for (size_t i = mdat + 4; i < mdat - 4 + mdat_size; ++i) scrambled[i] = char(i * 131 % 251);
  a2a::test::write_text(dir + "/scrambled.mp4", scrambled);
  try {
    a2a::read_video_audio_track(dir + "/scrambled.mp4");
  } catch (const a2a::Error& e) {  // refused cleanly, or decoded into noise: either is fine, a crash is not
    INFO(e.formatted());
    CHECK(e.code() == "corrupt_file");
  }
  // A plain audio file is not a video container we read.
  a2a::write_audio(dir + "/tone.wav", av_sines({440.0}, 16000, 0.1).samples, 16000);
  a2a::test::require_input_error([&] { a2a::read_video_audio_track(dir + "/tone.wav"); }, "unsupported_format",
                                 dir + "/tone.wav");
}

TEST_CASE("the muxer refuses what it cannot write and leaves no file behind", "[video_audio]") {
  const auto dir = av_dir("refused");
  const at::Tensor frames = av_numbered_frames(2, 16, 16);
  const a2a::AudioData sine = av_sines({440.0}, 16000, 0.1);
  const std::string path = dir + "/x.mp4";
  a2a::test::require_input_error([&] { a2a::write_video_with_audio(path, frames.slice(3, 0, 15), 4.0, sine); },
                                 "bad_shape", path);
  a2a::test::require_input_error(
      [&] {
        a2a::write_video_with_audio(path, at::zeros({2, 16, 16}), 4.0, sine);
      },
      "bad_shape", path);
  a2a::test::require_input_error([&] { a2a::write_video_with_audio(path, frames, 0.0, sine); }, "bad_fps", path);
  a2a::test::require_input_error(
      [&] {
        a2a::write_video_with_audio(path, frames, 4.0, {sine.samples, 12345});
      },
      "bad_sample_rate", path);
  a2a::test::require_input_error(
      [&] {
        a2a::write_video_with_audio(path, frames, 4.0, {at::zeros({9, 100}), 16000});
      },
      "bad_shape", path);
  a2a::test::require_input_error([&] { a2a::write_video_with_audio(dir + "/x.avi", frames, 4.0, sine); },
                                 "unsupported_format", dir + "/x.avi");
  a2a::test::require_input_error(
      [&] { a2a::write_video_with_audio(path, frames, 4.0, sine, a2a::VideoWriteFormat::Gif); }, "unsupported_format",
      path);
  CHECK(fs::is_empty(dir));
}
