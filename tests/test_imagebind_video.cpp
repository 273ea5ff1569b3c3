// ImageBind's video input from decoded frames: clip frames as decord cuts them, ShortSideScale, the three
// spatial crops, and the clip tensor layout the model takes.
#include <torch/torch.h>

#include "base/error.h"
#include "media/image_preprocess.h"
#include "media/imagebind_video.h"
#include "test_support.h"

namespace {

using ClipFrames = std::vector<std::vector<int64_t>>;

std::string imagebind_video_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const a2a::Error& e) {
    return e.code();
  }
  return "no error";
}

}  // namespace

TEST_CASE("ImageBind video clip frames follow the sampler and decord's clip cut", "[imagebind]") {
  a2a::ImageBindVideoOptions o;  // 5 clips of 2 s, 2 frames each
  // Values from pytorchvideo's sampler and EncodedVideoDecord.get_clip + UniformTemporalSubsample(2).
  CHECK(a2a::imagebind_video_clip_frames(300, 30.0, o) ==
        ClipFrames{{0, 59}, {60, 119}, {120, 179}, {180, 239}, {240, 299}});
  CHECK(a2a::imagebind_video_clip_frames(175, 25.0, o) ==
        ClipFrames{{0, 49}, {32, 81}, {63, 112}, {94, 143}, {125, 174}});
  CHECK(a2a::imagebind_video_clip_frames(100, 29.97, o) == ClipFrames{{0, 59}, {11, 69}, {21, 79}, {31, 89}, {41, 99}});
  // Shorter than a clip: every clip is the whole video.
  CHECK(a2a::imagebind_video_clip_frames(30, 30.0, o) == ClipFrames(5, {0, 29}));
  CHECK(imagebind_video_error([&] { a2a::imagebind_video_clip_frames(0, 30.0, o); }) == "bad_option");
  CHECK(imagebind_video_error([&] { a2a::imagebind_video_clip_frames(10, 0.0, o); }) == "bad_option");
}

TEST_CASE("ImageBind short side scale and spatial crop positions", "[imagebind]") {
  auto landscape = a2a::imagebind_short_side_scale(torch::rand({2, 3, 240, 320}), 224);
  CHECK(landscape.sizes() == at::IntArrayRef({2, 3, 224, 298}));  // floor(320 / 240 * 224)
  auto portrait = a2a::imagebind_short_side_scale(torch::rand({3, 2, 400, 300}), 224);
  CHECK(portrait.sizes() == at::IntArrayRef({3, 2, 298, 224}));
  // Bilinear without antialiasing, align_corners = False: upsample_bilinear2d itself.
  auto frames = torch::rand({1, 3, 240, 320});
  CHECK(at::equal(a2a::imagebind_short_side_scale(frames, 224), at::upsample_bilinear2d(frames, {224, 298}, false)));

  using Offsets = std::pair<int64_t, int64_t>;
  CHECK(a2a::imagebind_spatial_crop_offsets(224, 298, 224, 0) == Offsets{0, 0});
  CHECK(a2a::imagebind_spatial_crop_offsets(224, 298, 224, 1) == Offsets{0, 37});
  CHECK(a2a::imagebind_spatial_crop_offsets(224, 298, 224, 2) == Offsets{0, 74});
  CHECK(a2a::imagebind_spatial_crop_offsets(224, 299, 224, 1) == Offsets{0, 38});  // ceil(75 / 2)
  CHECK(a2a::imagebind_spatial_crop_offsets(298, 224, 224, 0) == Offsets{0, 0});
  CHECK(a2a::imagebind_spatial_crop_offsets(298, 224, 224, 1) == Offsets{37, 0});
  CHECK(a2a::imagebind_spatial_crop_offsets(298, 224, 224, 2) == Offsets{74, 0});
  CHECK(a2a::imagebind_spatial_crop_offsets(224, 224, 224, 2) == Offsets{0, 0});
  CHECK(imagebind_video_error([] { a2a::imagebind_spatial_crop_offsets(224, 298, 224, 3); }) == "bad_option");
  CHECK(imagebind_video_error([] { a2a::imagebind_spatial_crop_offsets(200, 298, 224, 1); }) == "bad_option");
}

TEST_CASE("ImageBind video clips: [clips x crops, 3, 2, 224, 224] of the right frames and windows", "[imagebind]") {
  a2a::ImageBindVideoOptions o;
  // 2 s at 10 fps, 240x320; frame t has a horizontal ramp plus t, so frames and crops can be told apart.
  const int64_t t = 20, h = 240, w = 320;
  auto ramp = torch::linspace(0, 0.5, w).view({1, 1, 1, w}).expand({t, 3, h, w});
  auto frames = (ramp + torch::arange(t).to(at::kFloat).view({t, 1, 1, 1}) * 0.02).contiguous();
  auto clips = a2a::imagebind_video_clips(frames, 10.0, o);
  REQUIRE(clips.sizes() == at::IntArrayRef({o.clips_per_video * o.num_crops, 3, o.frames_per_clip, o.size, o.size}));

  // Every clip covers the whole video: frames 0 and 19, then the left, centre and right windows.
  auto picked = frames.index_select(0, torch::tensor(std::vector<int64_t>{0, 19}));
  auto scaled = a2a::normalize_channels(a2a::imagebind_short_side_scale(picked, o.size), o.mean, o.std);
  auto layout = scaled.permute({1, 0, 2, 3});  // [3, 2, 224, 298]
  const int64_t lefts[] = {0, 37, 74};
  for (int64_t clip = 0; clip < o.clips_per_video; ++clip) {
    for (int64_t crop = 0; crop < 3; ++crop) {
      INFO("clip " << clip << " crop " << crop);
      auto expected = layout.slice(3, lefts[crop], lefts[crop] + o.size);
      CHECK(at::equal(clips[clip * 3 + crop], expected));
    }
  }
  CHECK(clips[0].select(1, 1).mean().item<double>() > clips[0].select(1, 0).mean().item<double>());

  a2a::ImageBindVideoOptions centre = o;
  centre.num_crops = 1;
  CHECK(a2a::imagebind_video_clips(frames, 10.0, centre).size(0) == o.clips_per_video);
  a2a::ImageBindVideoOptions two = o;
  two.num_crops = 2;
  CHECK(imagebind_video_error([&] { a2a::imagebind_video_clips(frames, 10.0, two); }) == "bad_option");
  CHECK(imagebind_video_error([&] { a2a::imagebind_video_clips(frames[0], 10.0, o); }) == "bad_shape");
}
