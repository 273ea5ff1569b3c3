// A video's audio track through read_video_audio_track: FFmpeg's demuxers and decoders behind our container
// check, the decoded-sample bound and the error mapping.
#include <ATen/ATen.h>

#include "fuzz/fuzz_target.h"
#include "media/video_audio.h"
#include "media/video_io.h"

namespace a2a::fuzz {

namespace {

const std::vector<std::string> kTrackExtensions = {".mp4", ".mkv", ".mov", ".avi"};

// Tighter than the default: a few kilobytes of silent AAC frames decode into millions of samples, and
// the bound must be reached within the fuzzer's memory limit.
constexpr uint64_t kFuzzMaxSamples = uint64_t{1} << 24;

// Input: one byte choosing the extension, then the file.
void video_audio(const Bytes& input) {
  const std::string path = scratch_media_file("video_audio", kTrackExtensions, input);
  if (path.empty()) return;
  const auto audio = read_video_audio_track(path, {kFuzzMaxSamples});
  if (!audio) return;
  fuzz_check(audio->samples.dim() == 2 && audio->samples.size(0) > 0 && audio->samples.size(1) > 0,
             "a decoded track is not [C, T] with samples");
  fuzz_check(uint64_t(audio->samples.numel()) <= kFuzzMaxSamples, "more samples than the bound");
  fuzz_check(audio->sample_rate > 0, "a decoded track has no sample rate");
}

std::vector<std::pair<std::string, Bytes>> video_audio_seeds() {
  std::vector<std::pair<std::string, Bytes>> seeds;
  const at::Tensor frames = at::linspace(0, 1, 2 * 3 * 16 * 16).reshape({2, 3, 16, 16});
  const at::Tensor t = at::arange(2000, at::kFloat) / 8000.0;
  const at::Tensor stereo = at::stack({at::sin(t * 2764.6), at::sin(t * 4146.9)}) * 0.5;
  const std::vector<AudioData> tracks = {{stereo.slice(0, 0, 1), 8000}, {stereo, 8000}, {stereo, 16000}};
  for (int i = 0; i < 3; ++i) {
    const std::string path = scratch_folder() + "/seed_audio" + kTrackExtensions[i];
    write_video_with_audio(path, frames, 4, tracks[i]);
    seeds.push_back({std::string("valid") + kTrackExtensions[i], media_seed(i, path)});
  }
  // A video without an audio track.
  const std::string avi = scratch_folder() + "/seed_silent.avi";
  write_video(avi, frames, 4);
  seeds.push_back({"no_audio.avi", media_seed(3, avi)});
  // The audio track's 'mdhd' claims 2^32 - 1 ticks.
  Bytes claims = read_bytes(scratch_folder() + "/seed_audio.mp4");
  for (size_t at = claims.find("mdhd"); at != Bytes::npos; at = claims.find("mdhd", at + 4)) {
    const size_t hdlr = claims.find("hdlr", at);
    if (hdlr != Bytes::npos && claims.compare(hdlr + 12, 4, "soun") == 0)
      claims.replace(at + 20, 4, "\xff\xff\xff\xff");
  }
  seeds.push_back({"claims_huge_duration.mp4", Bytes(1, '\0') + claims});
  return seeds;
}

}  // namespace

A2A_FUZZ_TARGET("video_audio",
                "a video's audio track (MP4/MOV, MKV, AVI) through read_video_audio_track: FFmpeg's demuxers "
                "and decoders behind the container check, the decoded-sample bound, conversion to float "
                "planar, error mapping",
                video_audio, video_audio_seeds);

}  // namespace a2a::fuzz
