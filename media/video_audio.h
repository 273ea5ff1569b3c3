#pragma once
// The audio track of a video file (MP4/MOV, MKV/WebM, AVI, ...), read through FFmpeg's libavformat,
// libavcodec and libswresample, which OpenCV's video reader cannot give; and an MP4 (or MOV, MKV)
// writer that muxes frames and an AAC audio track together.
//
// Audio is the value of media/audio_io.h: float samples [C, T] at the track's own sample rate and
// channel count (nothing is resampled or remixed).
#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>

#include "media/audio_io.h"
#include "media/video_io.h"

namespace a2a {

// What decoding a track may hold. A container's duration is only a claim, so the bound is checked
// against what really decodes, before each decoded frame is kept.
struct AudioTrackLimits {
  uint64_t max_samples = uint64_t{1} << 31;  // frames x channels, as for audio files
};

// The best audio track (FFmpeg's choice: av_find_best_stream) decoded in full, or nullopt when the
// file has no audio track or its track holds no samples: a silent video is not an error.
// Throws a2a::Error (Input) naming the file: file_not_found, not_a_file, empty_file, corrupt_file,
// truncated_file, unsupported_format (a container or codec we do not read), too_large (past `limits`).
std::optional<AudioData> read_video_audio_track(const std::string& path, const AudioTrackLimits& limits = {});

// frames: [T, 3, H, W] or [1, T, 3, H, W] in [0, 1], H and W even (4:2:0 chroma); audio: [C, T]
// (or [T]) of 1 to 6 or 8 channels at a rate AAC supports (7 350 to 96 000 Hz); [C, 0] writes an
// empty audio track. The extension picks the container: .mp4/.m4v, .mov or .mkv. Video is H.264 (libx264)
// when FFmpeg has it, else MPEG-4 Part 2 (`fallback` set), or MPEG-4 Part 2 when `video_format` asks
// for it; audio is FFmpeg's own AAC encoder.
// MP4 and MOV trim the AAC encoder's 1024 priming samples with an edit list; in MKV they stay (FFmpeg
// 5.1's Matroska muxer records that delay for Opus only).
// Written under a temporary name beside `path` and renamed into place, so a failure leaves no file.
// MP4 and MOV are written with their index (moov) first, so that a browser starts playing them early.
VideoWriteResult write_video_with_audio(const std::string& path, const at::Tensor& frames, double fps,
                                        const AudioData& audio,
                                        VideoWriteFormat video_format = VideoWriteFormat::Mp4H264);
// The same muxer with an optional sound track (null: video only).
VideoWriteResult mux_video(const std::string& path, const at::Tensor& frames, double fps, const AudioData* audio,
                           VideoWriteFormat video_format = VideoWriteFormat::Mp4H264);

// What a video file holds, read back through libavformat: whether it plays in a browser's <video>
// (H.264 in yuv420p, index first) and whether it has the frames and rate it was written with.
struct VideoStreamProbe {
  std::string container;     // the demuxer's name ("mov,mp4,m4a,3gp,3g2,mj2")
  std::string video_codec;   // "h264"
  std::string pixel_format;  // "yuv420p"
  std::string profile;       // "High"; "" when the codec has none
  int64_t width = 0;
  int64_t height = 0;
  int64_t frames = 0;        // packets of the video stream
  double fps = 0.0;          // the stream's average frame rate
  std::string audio_codec;   // "" without a sound track
  bool index_first = false;  // MP4/MOV: the moov box comes before mdat (faststart)
};
// Throws a2a::Error (Input) naming the file as read_video_audio_track does; unsupported_format when it has
// no video stream.
VideoStreamProbe probe_video_file(const std::string& path);

}  // namespace a2a
