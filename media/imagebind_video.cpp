#include "media/imagebind_video.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "base/error.h"
#include "media/clip_sampler.h"
#include "media/image_preprocess.h"
#include "media/video_io.h"

namespace a2a {

std::vector<std::vector<int64_t>> imagebind_video_clip_frames(int64_t frame_count, double fps,
                                                              const ImageBindVideoOptions& options) {
  if (frame_count <= 0 || !(fps > 0.0) || options.frames_per_clip <= 0) {
    throw_input_error("bad_option", "ImageBind video: needs frames, a positive frame rate and frames_per_clip > 0");
  }
  ConstantClipsSampling sampling;
  sampling.clip_duration = options.clip_duration;
  sampling.clips_per_video = options.clips_per_video;
  // EncodedVideoDecord's duration: frames / average rate.
  const double duration = static_cast<double>(frame_count) / fps;
  std::vector<std::vector<int64_t>> clips;
  for (const auto& [start, end] : constant_clip_timepoints(duration, sampling)) {
    const auto first = static_cast<int64_t>(std::ceil(fps * start));
    const int64_t last = std::min(static_cast<int64_t>(std::ceil(fps * end)), frame_count);
    if (first >= last) {
      throw_input_error("empty_clip", "ImageBind video: the clip from " + std::to_string(start) +
                                          " s holds no frame of " + std::to_string(frame_count) + " at " +
                                          std::to_string(fps) + " fps");
    }
    std::vector<int64_t> clip;
    for (int64_t i : uniform_frame_indices(last - first, options.frames_per_clip)) clip.push_back(first + i);
    clips.push_back(std::move(clip));
  }
  return clips;
}

at::Tensor imagebind_short_side_scale(const at::Tensor& frames, int64_t size) {
  if (frames.dim() < 2 || size <= 0) {
    throw_input_error("bad_shape", "ImageBind video: short side scaling needs [..., H, W] and a positive size");
  }
  const int64_t h = frames.size(-2), w = frames.size(-1);
  int64_t new_h = size, new_w = size;
  if (w < h) {
    new_h = static_cast<int64_t>(std::floor(static_cast<double>(h) / w * size));
  } else {
    new_w = static_cast<int64_t>(std::floor(static_cast<double>(w) / h * size));
  }
  // 4-D input goes to the kernel as it is, as interpolate takes the reference's [C, T, H, W].
  auto planes = frames.dim() == 4 ? frames : frames.reshape({-1, 1, h, w});
  auto scaled = at::upsample_bilinear2d(planes, {new_h, new_w}, /*align_corners=*/false);
  auto shape = frames.sizes().vec();
  shape[shape.size() - 2] = new_h;
  shape[shape.size() - 1] = new_w;
  return scaled.view(shape);
}

std::pair<int64_t, int64_t> imagebind_spatial_crop_offsets(int64_t height, int64_t width, int64_t size,
                                                           int64_t spatial_idx) {
  if (spatial_idx < 0 || spatial_idx > 2 || size > height || size > width) {
    throw_input_error("bad_option", "ImageBind video: crop " + std::to_string(spatial_idx) + " of " +
                                        std::to_string(size) + " px does not fit a " + std::to_string(height) + "x" +
                                        std::to_string(width) + " frame");
  }
  int64_t top = (height - size + 1) / 2, left = (width - size + 1) / 2;  // ceil((side - size) / 2)
  if (height > width) {
    if (spatial_idx == 0) top = 0;
    if (spatial_idx == 2) top = height - size;
  } else {
    if (spatial_idx == 0) left = 0;
    if (spatial_idx == 2) left = width - size;
  }
  return {top, left};
}

at::Tensor imagebind_video_clips(const at::Tensor& frames, double fps, const ImageBindVideoOptions& options) {
  if (!frames.defined() || frames.dim() != 4 || frames.size(1) != 3) {
    throw_input_error("bad_shape", "ImageBind video: frames must be [T, 3, H, W], got " +
                                       (frames.defined() ? c10::str(frames.sizes()) : std::string("none")));
  }
  if (options.num_crops != 3 && options.num_crops != 1) {
    throw_input_error("bad_option", "ImageBind video: num_crops must be 3 or 1");
  }
  const std::vector<int64_t> crops = options.num_crops == 3 ? std::vector<int64_t>{0, 1, 2} : std::vector<int64_t>{1};
  std::vector<at::Tensor> out;
  for (const auto& indices : imagebind_video_clip_frames(frames.size(0), fps, options)) {
    auto picked = frames.index_select(0, torch::tensor(indices, torch::kLong)).to(at::kFloat);  // [F, 3, H, W]
    auto scaled = normalize_channels(imagebind_short_side_scale(picked, options.size), options.mean, options.std);
    auto clip = scaled.permute({1, 0, 2, 3});  // [3, F, H', W']
    for (int64_t idx : crops) {
      const auto [top, left] = imagebind_spatial_crop_offsets(clip.size(2), clip.size(3), options.size, idx);
      out.push_back(clip.slice(2, top, top + options.size).slice(3, left, left + options.size));
    }
  }
  return torch::stack(out).contiguous();
}

}  // namespace a2a
