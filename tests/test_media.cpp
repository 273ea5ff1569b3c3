// Image and audio files: round trips for every format, and clear errors for bad files.
#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "media/audio_io.h"
#include "media/image_io.h"
#include "pipeline/value_io.h"
#include "stages/media_file.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

std::string media_dir(const std::string& name) {
  fs::path dir = fs::path(a2a::test::scratch_dir()) / ("media_" + name);
  fs::create_directories(dir);
  return dir.string();
}

using a2a::test::read_text;
using a2a::test::write_text;

// An image with 8-bit exact values, smooth enough for lossy codecs.
at::Tensor test_image(int64_t h, int64_t w) {
  auto y = at::arange(h, at::kFloat).view({1, h, 1}) / h;
  auto x = at::arange(w, at::kFloat).view({1, 1, w}) / w;
  auto img = at::cat({y.expand({1, h, w}), x.expand({1, h, w}), (0.5 * (x + y)).expand({1, h, w})}, 0);
  return img.mul(255).round().div(255);
}

}  // namespace

TEST_CASE("PNG, BMP and lossless WebP round-trip 8-bit images exactly", "[media]") {
  const auto dir = media_dir("lossless");
  auto img = test_image(21, 34);
  for (const char* name : {"a.png", "a.bmp", "a.webp", "A.PNG"}) {
    const std::string path = dir + "/" + name;
    a2a::write_image(img, path);
    auto back = a2a::read_image(path);
    REQUIRE(back.sizes() == img.sizes());
    INFO(name);
    CHECK(back.sub(img).abs().max().item<float>() < 1e-6f);
  }
}

TEST_CASE("16-bit PNG keeps 16-bit precision", "[media]") {
  const auto dir = media_dir("png16");
  auto img = at::rand({3, 9, 11}, at::TensorOptions().dtype(at::kFloat));
  a2a::ImageWriteOptions opt;
  opt.bit_depth = 16;
  a2a::write_image(img.unsqueeze(0), dir + "/deep.png", opt);
  cv::Mat raw = cv::imread(dir + "/deep.png", cv::IMREAD_UNCHANGED);
  CHECK(raw.depth() == CV_16U);
  auto back = a2a::read_image(dir + "/deep.png");
  CHECK(back.sub(img).abs().max().item<float>() <= 0.5f / 65535 + 1e-6f);
  CHECK_THROWS_AS(a2a::write_image(img, dir + "/deep.jpg", opt), a2a::Error);
}

TEST_CASE("JPEG and lossy WebP round-trip within codec error", "[media]") {
  const auto dir = media_dir("lossy");
  auto img = test_image(32, 48);
  for (const char* name : {"a.jpg", "a.jpeg", "b.webp"}) {
    a2a::ImageWriteOptions opt;
    opt.webp_quality = 90;
    a2a::write_image(img, dir + "/" + name, opt);
    auto back = a2a::read_image(dir + "/" + name);
    REQUIRE(back.sizes() == img.sizes());
    INFO(name);
    CHECK(back.sub(img).abs().mean().item<float>() < 0.02f);
  }
}

TEST_CASE("grayscale expands to RGB and alpha is dropped", "[media]") {
  const auto dir = media_dir("channels");
  cv::Mat gray(5, 7, CV_8UC1);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) gray.at<uint8_t>(y, x) = static_cast<uint8_t>(30 * y + x);
  REQUIRE(cv::imwrite(dir + "/gray.png", gray));
  auto g = a2a::read_image(dir + "/gray.png");
  REQUIRE(g.sizes() == at::IntArrayRef({3, 5, 7}));
  CHECK(at::equal(g[0], g[1]));
  CHECK(at::equal(g[0], g[2]));
  CHECK(g[0][2][3].item<float>() == Approx(63.0 / 255).epsilon(1e-6));

  cv::Mat bgra(4, 4, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent
  REQUIRE(cv::imwrite(dir + "/alpha.png", bgra));
  auto a = a2a::read_image(dir + "/alpha.png");
  REQUIRE(a.size(0) == 3);
  CHECK(a[0][0][0].item<float>() == Approx(30.0 / 255));  // R, the stored colour
  CHECK(a[2][0][0].item<float>() == Approx(10.0 / 255));  // B
}

TEST_CASE("bad image files give clear errors", "[media]") {
  const auto dir = media_dir("bad_images");
  auto img = test_image(40, 40);
  for (const char* name : {"t.png", "t.jpg", "t.bmp", "t.webp"}) a2a::write_image(img, dir + "/" + name);

  a2a::test::require_input_error([&] { a2a::read_image(dir + "/missing.png"); }, "file_not_found",
                                 dir + "/missing.png");
  write_text(dir + "/empty.png", "");
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/empty.png"); }, "empty_file", dir + "/empty.png");
  write_text(dir + "/garbage.png", "this is not an image at all");
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/garbage.png"); }, "unsupported_format",
                                 dir + "/garbage.png");
  write_text(dir + "/anim.gif", "GIF89a\x01\x00\x01\x00\x00\x00\x00;");
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/anim.gif"); }, "unsupported_format", dir + "/anim.gif");

  for (const char* name : {"t.png", "t.jpg", "t.bmp", "t.webp"}) {
    const std::string bytes = read_text(dir + "/" + name);
    const std::string cut = dir + "/cut_" + name;
    write_text(cut, bytes.substr(0, bytes.size() * 2 / 3));
    a2a::test::require_input_error([&] { a2a::read_image(cut); }, "truncated_file", cut);
  }
  // Structure intact, compressed data scrambled: libpng's checks fail.
  std::string png = read_text(dir + "/t.png");
  const size_t idat = png.find("IDAT");
  REQUIRE(idat != std::string::npos);
  for (size_t i = idat + 8; i < idat + 40 && i < png.size(); ++i) png[i] = static_cast<char>(png[i] ^ 0x5A);
  write_text(dir + "/scrambled.png", png);
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/scrambled.png"); }, "corrupt_file",
                                 dir + "/scrambled.png");
  a2a::test::require_input_error([&] { a2a::write_image(img, dir + "/out.tiff"); }, "unsupported_format",
                                 dir + "/out.tiff");
}

TEST_CASE("an image header claiming too many pixels is refused before decoding", "[media]") {
  const auto dir = media_dir("huge_images");
  auto img = test_image(6, 10);
  for (const char* name : {"t.png", "t.jpg"}) a2a::write_image(img, dir + "/" + name);
  // PNG: the IHDR's width and height (bytes 16..23) say 100000 x 100000.
  std::string png = read_text(dir + "/t.png");
  const std::string hundred_thousand("\x00\x01\x86\xA0", 4);
  png.replace(16, 4, hundred_thousand);
  png.replace(20, 4, hundred_thousand);
  write_text(dir + "/huge.png", png);
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/huge.png"); }, "too_large", dir + "/huge.png");
  // JPEG: the frame header's sizes say 65535 x 65535.
  std::string jpg = read_text(dir + "/t.jpg");
  const size_t sof = jpg.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  jpg.replace(sof + 5, 4, std::string("\xFF\xFF\xFF\xFF", 4));
  write_text(dir + "/huge.jpg", jpg);
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/huge.jpg"); }, "too_large", dir + "/huge.jpg");
  // WebP: an extended-format canvas of 2^24 x 2^24.
  std::string webp = std::string("RIFF") + std::string("\x16\0\0\0", 4) + "WEBPVP8X" + std::string("\x0a\0\0\0", 4) +
                     std::string(4, '\0') + std::string(6, '\xff');
  write_text(dir + "/huge.webp", webp);
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/huge.webp"); }, "too_large", dir + "/huge.webp");
  // The bound is an option: 6 x 10 pixels pass at 60 and fail at 59.
  CHECK(a2a::read_image(dir + "/t.png", {60}).size(2) == 10);
  a2a::test::require_input_error([&] { a2a::read_image(dir + "/t.png", {59}); }, "too_large", dir + "/t.png");
}

namespace {
at::Tensor test_audio(int64_t channels, int64_t frames, int64_t rate) {
  auto t = at::arange(frames, at::kDouble).div(rate).view({1, frames});
  auto freq = at::arange(1, channels + 1, at::kDouble).mul(220).view({channels, 1});
  return (0.6 * at::sin(2 * M_PI * freq * t)).to(at::kFloat);
}
}  // namespace

TEST_CASE("WAV round-trips PCM16 and float, mono and multi-channel", "[media]") {
  const auto dir = media_dir("wav");
  for (int64_t channels : {1, 2, 5}) {
    auto audio = test_audio(channels, 1200, 16000);
    a2a::write_audio(dir + "/pcm.wav", audio, 16000);
    auto pcm = a2a::read_audio(dir + "/pcm.wav");
    CHECK(pcm.sample_rate == 16000);
    REQUIRE(pcm.samples.sizes() == audio.sizes());
    CHECK(pcm.samples.sub(audio).abs().max().item<float>() < 1.5f / 32768);

    a2a::AudioWriteOptions f32;
    f32.encoding = a2a::AudioEncoding::Float32;
    a2a::write_audio(dir + "/float.wav", audio.unsqueeze(0), 22050, f32);
    auto fl = a2a::read_audio(dir + "/float.wav");
    CHECK(fl.sample_rate == 22050);
    CHECK(at::equal(fl.samples, audio));
  }
  // Out-of-range samples saturate instead of wrapping around.
  a2a::write_audio(dir + "/loud.wav", at::full({1, 10}, 3.0f), 8000);
  CHECK(a2a::read_audio(dir + "/loud.wav").samples.min().item<float>() > 0.99f);
}

TEST_CASE("FLAC is lossless for 16-bit audio and OGG Vorbis stays close", "[media]") {
  const auto dir = media_dir("flac_ogg");
  auto audio = test_audio(2, 4000, 16000);
  a2a::write_audio(dir + "/a.flac", audio, 16000);
  auto flac = a2a::read_audio(dir + "/a.flac");
  CHECK(flac.sample_rate == 16000);
  REQUIRE(flac.samples.sizes() == audio.sizes());
  CHECK(flac.samples.sub(audio).abs().max().item<float>() < 1.5f / 32768);  // 16-bit precision kept

  a2a::write_audio(dir + "/a.ogg", audio, 16000);
  auto ogg = a2a::read_audio(dir + "/a.ogg");
  CHECK(ogg.sample_rate == 16000);
  REQUIRE(ogg.samples.sizes() == audio.sizes());
  const double rms = ogg.samples.sub(audio).pow(2).mean().sqrt().item<double>();
  CHECK(rms < 0.05);

  a2a::AudioWriteOptions f32;
  f32.encoding = a2a::AudioEncoding::Float32;
  a2a::test::require_input_error([&] { a2a::write_audio(dir + "/x.flac", audio, 16000, f32); }, "unsupported_format",
                                 dir + "/x.flac");
}

TEST_CASE("bad audio files give clear errors", "[media]") {
  const auto dir = media_dir("bad_audio");
  auto audio = test_audio(2, 16000, 16000);
  for (const char* name : {"t.wav", "t.flac", "t.ogg"}) a2a::write_audio(dir + "/" + name, audio, 16000);

  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/none.wav"); }, "file_not_found", dir + "/none.wav");
  write_text(dir + "/empty.wav", "");
  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/empty.wav"); }, "empty_file", dir + "/empty.wav");
  write_text(dir + "/garbage.wav", std::string(4096, 'x'));
  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/garbage.wav"); }, "unsupported_format",
                                 dir + "/garbage.wav");
  for (const char* name : {"t.wav", "t.flac"}) {
    const std::string bytes = read_text(dir + "/" + name);
    const std::string cut = dir + "/cut_" + name;
    write_text(cut, bytes.substr(0, bytes.size() / 2));
    a2a::test::require_input_error([&] { a2a::read_audio(cut); }, "truncated_file", cut);
  }
  const std::string ogg = read_text(dir + "/t.ogg");
  write_text(dir + "/cut.ogg", ogg.substr(0, ogg.size() / 2));
  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/cut.ogg"); }, "corrupt_file", dir + "/cut.ogg");
}

TEST_CASE("audio headers claiming huge lengths allocate only what decodes", "[media]") {
  const auto dir = media_dir("huge_audio");
  a2a::write_audio(dir + "/small.flac", test_audio(2, 4000, 16000), 16000);
  const std::string flac = read_text(dir + "/small.flac");
  REQUIRE(flac.compare(0, 4, "fLaC") == 0);
  // STREAMINFO's total sample count: the low 36 bits of the big-endian 64 bits at byte 18.
  auto with_frames = [&](uint64_t frames) {
    std::string bytes = flac;
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(bytes[18 + i]);
    bits = (bits & ~((uint64_t{1} << 36) - 1)) | frames;
    for (int i = 7; i >= 0; --i, bits >>= 8) bytes[18 + i] = static_cast<char>(bits & 0xff);
    return bytes;
  };
  write_text(dir + "/long.flac", with_frames(uint64_t{1} << 30));  // 2^31 samples: at the limit, 8.6 GB if trusted
  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/long.flac"); }, "truncated_file", dir + "/long.flac");
  write_text(dir + "/longer.flac", with_frames(uint64_t{1} << 33));
  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/longer.flac"); }, "corrupt_file", dir + "/longer.flac");

  // A WAV header alone, 8-bit mono, whose data chunk claims 2^31 bytes (2^31 frames).
  auto le32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
  };
  auto le16 = [](uint16_t v) { return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; };
  const std::string wav = "RIFF" + le32(0xffffffffu) + "WAVE" + "fmt " + le32(16) + le16(1) + le16(1) + le32(8000) +
                          le32(8000) + le16(1) + le16(8) + "data" + le32(0x80000000u) + std::string(64, '\x80');
  write_text(dir + "/long.wav", wav);
  a2a::test::require_input_error([&] { a2a::read_audio(dir + "/long.wav"); }, "truncated_file", dir + "/long.wav");
}

TEST_CASE("media files load as graph values and save atomically by extension", "[media]") {
  const auto dir = media_dir("values");
  auto img = test_image(8, 12).unsqueeze(0);
  auto saved = a2a::save_value(a2a::Value::image(img), dir + "/cat.png");
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].format == "PNG");
  auto loaded = a2a::load_media_value(dir + "/cat.png", a2a::ValueType::Image);
  CHECK(loaded.type() == a2a::ValueType::Image);
  CHECK(at::allclose(loaded.tensor(), img, 0, 1e-6));

  // A batch of two writes one file per item.
  auto pair = a2a::save_value(a2a::Value::image(at::cat({img, 1 - img})), dir + "/pair.jpg");
  REQUIRE(pair.size() == 2);
  CHECK(fs::exists(dir + "/pair_0.jpg"));
  CHECK(fs::exists(dir + "/pair_1.jpg"));

  auto audio = test_audio(2, 800, 8000).unsqueeze(0);
  a2a::save_value(a2a::Value::audio(audio, 8000), dir + "/voice.flac");
  auto voice = a2a::load_media_value(dir + "/voice.flac", a2a::ValueType::Audio);
  CHECK(voice.sample_rate() == 8000);
  CHECK(voice.tensor().sizes() == audio.sizes());

  a2a::save_value(a2a::Value::text("a red fox\n"), dir + "/caption.txt");
  CHECK(read_text(dir + "/caption.txt") == "a red fox\n");
  CHECK(a2a::load_media_value(dir + "/caption.txt", a2a::ValueType::Text).text() == "a red fox\n");

  // The pipeline's file hooks reach the same code.
  a2a::save_value_file(a2a::Value::image(img), dir + "/hook.bmp");
  CHECK(at::allclose(a2a::load_value_file(dir + "/hook.bmp", a2a::ValueType::Image).tensor(), img, 0, 1e-6));

  // No temporary files are left behind.
  for (const auto& entry : fs::directory_iterator(dir)) {
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
  }

  a2a::test::require_input_error([&] { a2a::load_media_value(dir + "/voice.flac", a2a::ValueType::Image); },
                                 "wrong_media_kind", dir + "/voice.flac");
  a2a::test::require_input_error([&] { a2a::save_value(a2a::Value::audio(audio, 8000), dir + "/x.png"); },
                                 "wrong_media_kind", dir + "/x.png");
  a2a::test::require_input_error(
      [&] {
        a2a::save_value(a2a::Value::latent(at::zeros({1, 4, 2, 2})), dir + "/z.png");
      },
      "unsupported_output_type", dir + "/z.png");
  a2a::test::require_input_error([&] { a2a::save_value(a2a::Value::image(img), dir + "/no/such/dir/x.png"); },
                                 "write_failed", dir + "/no/such/dir/x.png");
  // A failed save leaves the previous file untouched.
  a2a::test::require_input_error(
      [&] {
        a2a::save_value(a2a::Value::image(at::zeros({1, 3, 0, 4})), dir + "/cat.png");
      },
      "bad_shape", dir + "/cat.png");
  CHECK(at::allclose(a2a::read_image(dir + "/cat.png"), img[0], 0, 1e-6));
}
