#pragma once
// Reading video (MP4, AVI, MKV, WebM, GIF, ...) through OpenCV's FFmpeg backend, uniform frame and clip
// sampling for video encoders, and writing MP4/MOV/MKV (H.264 in yuv420p through FFmpeg, index first), AVI
// (MJPG), an animated GIF or a folder of PNG frames.
//
// Frames are float tensors [T, 3, H, W], RGB in [0, 1].
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace a2a {

struct VideoInfo {
  int64_t frame_count = 0;
  double fps = 0.0;
  int64_t width = 0;
  int64_t height = 0;
  double duration_seconds() const { return fps > 0 ? frame_count / fps : 0.0; }
};

struct VideoData {
  at::Tensor frames;  // [T, 3, H, W]
  double fps = 0.0;
  VideoInfo info;  // of the whole file
};

// Opens the file and reads its frame count, rate and size. The count comes from the container's index
// for MP4/MOV/AVI and from decoding every frame for containers without one (MKV, WebM, GIF).
// Throws a2a::Error (Input) naming the file for a missing, empty, corrupt or unsupported file.
VideoInfo probe_video(const std::string& path);

// What decoding may hold: a few kilobytes of compressed frames can decode into gigabytes. Past either
// bound the read stops with `too_large`, naming the file, before the frame that would cross it is kept.
struct VideoReadLimits {
  uint64_t max_frame_pixels = uint64_t{1} << 28;  // width x height, as for still images
  uint64_t max_total_pixels = uint64_t{1} << 30;  // frames x width x height (12 GB as float RGB)
};

// Every frame, or the first max_frames when max_frames > 0.
VideoData read_video(const std::string& path, int64_t max_frames = 0, const VideoReadLimits& limits = {});

// The frames with the given indices (any order, repeats allowed): [indices.size(), 3, H, W].
VideoData read_video_frames(const std::string& path, const std::vector<int64_t>& indices,
                            const VideoReadLimits& limits = {});

// N indices spread uniformly over [0, frame_count - 1], as torchvision/pytorchvideo's
// UniformTemporalSubsample does: linspace(0, count - 1, n) truncated to integers.
std::vector<int64_t> uniform_frame_indices(int64_t frame_count, int64_t n);

// N frames sampled uniformly over the whole video: [N, 3, H, W].
VideoData sample_frames_uniform(const std::string& path, int64_t n);

// K clips of `clip_seconds` whose starts are spread uniformly over the video (pytorchvideo's
// ConstantClipsPerVideoSampler, as ImageBind uses it: start_k = k * max(duration - clip, 0) / K).
// Each clip gives `frames_per_clip` frames spread uniformly over its frames (0 = every frame of the
// clip). A clip longer than the video repeats its last frame. Result: [K, F, 3, H, W].
struct ClipSampling {
  int64_t clips = 1;
  double clip_seconds = 2.0;
  int64_t frames_per_clip = 0;
};
at::Tensor sample_clips_uniform(const std::string& path, const ClipSampling& sampling, VideoInfo* info = nullptr);
// The frame indices of each clip, for a video of `info`'s length and rate.
std::vector<std::vector<int64_t>> uniform_clip_frame_indices(const VideoInfo& info, const ClipSampling& sampling);

enum class VideoWriteFormat { Mp4H264, Mp4Mpeg4, AviMjpg, Gif, PngFrames };
const char* video_write_format_name(VideoWriteFormat format);

struct VideoWriteResult {
  std::string path;  // what was written: the file, or the folder of PNG frames
  VideoWriteFormat format = VideoWriteFormat::Mp4H264;
  bool fallback = false;  // the requested encoder was unavailable
  std::string note;       // says why a fallback was taken
};

struct VideoWriteOptions {
  // For .mp4: when no H.264 encoder is available, try MPEG-4 Part 2, then write a PNG frame folder
  // (named like the file with "_frames" instead of the extension) rather than fail.
  bool allow_fallback = true;
};

// frames: [T, 3, H, W] or [1, T, 3, H, W] in [0, 1]. The extension picks the format: .mp4, .avi, .mkv,
// .mov, .gif; a path without extension (or ending in '/') is a PNG frame folder (000000.png, ...). MP4, MOV
// and MKV go through mux_video (media/video_audio.h); an odd side is padded by repeating its last row or
// column, which `note` says.
VideoWriteResult write_video(const std::string& path, const at::Tensor& frames, double fps,
                             const VideoWriteOptions& options = {});

// An animated GIF with a fixed 6x7x6 colour cube palette and LZW compression. Frame delays are
// rounded to 1/100 s, the GIF time unit.
void write_gif(const std::string& path, const at::Tensor& frames, double fps);

}  // namespace a2a
