#pragma once
// ImageBind's video input (imagebind/data.py load_and_transform_video_data) from decoded frames: 5 clips of
// 2 s (ConstantClipsPerVideoSampler), 2 frames each (UniformTemporalSubsample), short side scaled to 224
// (bilinear, no antialiasing), CLIP normalisation, 3 spatial crops per clip (SpatialCrop).
#include <ATen/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace a2a {

// Defaults are load_and_transform_video_data's.
struct ImageBindVideoOptions {
  double clip_duration = 2.0;  // seconds
  int64_t clips_per_video = 5;
  int64_t frames_per_clip = 2;  // the reference samples clip_duration frames per clip
  int64_t size = 224;           // short side and crop size
  int64_t num_crops = 3;        // 3 (left/top, centre, right/bottom) or 1 (centre)
  std::vector<double> mean = {0.48145466, 0.4578275, 0.40821073};
  std::vector<double> std = {0.26862954, 0.26130258, 0.27577711};
};

// The frame indices of each clip in a video of frame_count frames at fps, as the decord decoder cuts a
// clip: [ceil(fps * start), min(ceil(fps * end), frame_count)), then frames_per_clip of them spread by
// UniformTemporalSubsample. An empty clip raises "empty_clip".
std::vector<std::vector<int64_t>> imagebind_video_clip_frames(int64_t frame_count, double fps,
                                                              const ImageBindVideoOptions& options = {});

// pytorchvideo's ShortSideScale: [..., H, W] resized so that the shorter side is `size` and the longer
// floor(long / short * size), bilinear with align_corners=False and no antialiasing.
at::Tensor imagebind_short_side_scale(const at::Tensor& frames, int64_t size);

// uniform_crop's offsets {top, left} of crop `spatial_idx` (0, 1, 2): the centre is ceil((side - size) / 2);
// 0 and 2 move to the ends of the longer side (the horizontal one for a square frame).
std::pair<int64_t, int64_t> imagebind_spatial_crop_offsets(int64_t height, int64_t width, int64_t size,
                                                           int64_t spatial_idx);

// frames [T, 3, H, W] RGB in [0, 1] at fps -> [clips * crops, 3, frames_per_clip, size, size], clip by clip
// and crop by crop within a clip. Stack videos on a new first dimension for the model's 6-D input.
at::Tensor imagebind_video_clips(const at::Tensor& frames, double fps, const ImageBindVideoOptions& options = {});

}  // namespace a2a
