// Video files through probe_video and read_video: our container checks and frame bounds around OpenCV.
#include <ATen/ATen.h>

#include "fuzz/fuzz_target.h"
#include "media/video_io.h"

namespace a2a::fuzz {

namespace {

const std::vector<std::string> kVideoExtensions = {".mp4", ".avi", ".mkv", ".gif"};

// Input: one byte choosing the extension, then the file.
void video_file(const Bytes& input) {
  const std::string path = scratch_media_file("video", kVideoExtensions, input);
  if (path.empty()) return;
  const VideoInfo info = probe_video(path);
  fuzz_check(info.frame_count >= 0 && info.width >= 0 && info.height >= 0, "negative video sizes");
  VideoData video = read_video(path, 3);
  fuzz_check(video.frames.dim() == 4 && video.frames.size(0) <= 3, "read_video gave more frames than asked");
  if (info.frame_count > 0) read_video_frames(path, {0, info.frame_count - 1});
}

std::vector<std::pair<std::string, Bytes>> video_file_seeds() {
  std::vector<std::pair<std::string, Bytes>> seeds;
  const at::Tensor frames = at::linspace(0, 1, 3 * 3 * 16 * 16).reshape({3, 3, 16, 16});
  for (int i = 0; i < 4; ++i) {
    const std::string path = scratch_folder() + "/seed" + kVideoExtensions[i];
    VideoWriteOptions options;
    options.allow_fallback = false;
    try {
      write_video(path, frames, 4, options);
    } catch (const Error&) {  // no encoder for this container here
      continue;
    }
    seeds.push_back({std::string("valid") + kVideoExtensions[i], media_seed(i, path)});
  }
  // A box whose 64-bit size is 2^64 - 16 (the walker once wrapped and went backwards).
  Bytes wrap(
      "\0\0\0\x01"
      "ftyp"
      "\xff\xff\xff\xff\xff\xff\xff\xf0"
      "isom\0\0\0\0"
      "isom"
      "mp41",
      32);
  seeds.push_back({"wrap.mp4", Bytes(1, '\0') + wrap});
  return seeds;
}

}  // namespace

A2A_FUZZ_TARGET("video_file",
                "video files (MP4, AVI, MKV, GIF) through probe_video, read_video and "
                "read_video_frames: the MP4 box walk, frame counts and sizes, error mapping",
                video_file, video_file_seeds);

}  // namespace a2a::fuzz
