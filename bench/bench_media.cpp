// Media: antialiased resize (ours vs LibTorch's kernel), image and audio codecs.
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>

#include "bench/bench.h"
#include "media/audio_io.h"
#include "media/image_io.h"
#include "media/image_preprocess.h"

namespace {

void bench_media() {
  using a2a::bench::seconds_per_call;
  auto image = at::rand({1, 3, 480, 640}) * 255;
  for (auto filter : {a2a::ResizeFilter::Bicubic, a2a::ResizeFilter::Bilinear}) {
    const bool cubic = filter == a2a::ResizeFilter::Bicubic;
    const double ours = seconds_per_call([&] { a2a::resize_antialiased(image, 224, 298, filter); });
    const double torch_aa = seconds_per_call([&] {
      if (cubic)
        at::_upsample_bicubic2d_aa(image, {224, 298}, false);
      else
        at::_upsample_bilinear2d_aa(image, {224, 298}, false);
    });
    std::printf("resize 480x640 -> 224x298 %-8s ours %7.2f ms   LibTorch _aa kernel %7.2f ms   ratio %.2f\n",
                cubic ? "bicubic" : "bilinear", ours * 1e3, torch_aa * 1e3, ours / torch_aa);
  }
  a2a::ImagePreprocessOptions clip;
  const double pre = seconds_per_call([&] { a2a::preprocess_image(image / 255, clip); });
  std::printf("CLIP preprocessing of a 640x480 image: %.2f ms\n", pre * 1e3);

  const auto dir = std::filesystem::temp_directory_path() / "a2a_bench_media";
  std::filesystem::create_directories(dir);
  auto rgb = at::rand({3, 512, 512});
  for (const char* name : {"b.png", "b.jpg", "b.webp", "b.bmp"}) {
    const std::string path = (dir / name).string();
    const double write = seconds_per_call([&] { a2a::write_image(rgb, path); });
    const double read = seconds_per_call([&] { a2a::read_image(path); });
    std::printf("512x512 %-6s write %7.2f ms  read %7.2f ms\n", name + 2, write * 1e3, read * 1e3);
  }
  auto audio = at::rand({2, 16000 * 10}) * 2 - 1;
  for (const char* name : {"a.wav", "a.flac", "a.ogg"}) {
    const std::string path = (dir / name).string();
    const double write = seconds_per_call([&] { a2a::write_audio(path, audio, 16000); });
    const double read = seconds_per_call([&] { a2a::read_audio(path); });
    std::printf("10 s stereo 16 kHz %-5s write %7.2f ms  read %7.2f ms\n", name + 2, write * 1e3, read * 1e3);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

A2A_BENCH("media", bench_media);
