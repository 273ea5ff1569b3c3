// A video's sound track as a value of its own, and back: video_audio takes it out (absent for a silent video,
// so the stages that need it are skipped), video_with_audio attaches one (saved as AAC in .mp4/.mov/.mkv).
#include <ATen/ATen.h>

#include "base/error.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stages/media_file.h"

namespace a2a {
namespace {

class VideoAudioStage : public Stage {
 public:
  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    std::optional<Value> audio = sound_track(input(inputs, "video"));
    if (!audio) {
      ctx.report_progress(1, 1, "the video has no sound track");
      return {};
    }
    return {{"audio", *audio}};
  }
};

StageInfo video_audio_info() {
  StageInfo info;
  info.type = "video_audio";
  info.description =
      "The sound track of a video value (read with the video from an MP4/MKV/MOV/AVI file through FFmpeg): audio "
      "[B, C, S] at the track's own rate and channel count. A video without sound leaves the output absent, and the "
      "stages that need it are skipped; this is not an error.";
  info.ports.inputs = {in_port("video", ValueType::Video, "[B, T, 3, H, W] frames, with their sound track if any")};
  info.ports.outputs = {out_port("audio", ValueType::Audio, "[B, C, S] the sound track; absent for a silent video")};
  info.create = [] { return std::make_unique<VideoAudioStage>(); };
  return info;
}

A2A_REGISTER_STAGE(video_audio_info);

class VideoWithAudioStage : public Stage {
 public:
  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    const Value& video = input(inputs, "video");
    const Value& audio = input(inputs, "audio");
    const at::Tensor& frames = video.tensor();
    const at::Tensor& samples = audio.tensor();
    if (frames.dim() != 5 || samples.dim() != 3 || samples.size(0) != frames.size(0)) {
      throw_input_error("bad_shape", "video_with_audio (stage '" + ctx.stage_id +
                                         "'): expected a video [B, T, 3, H, W] "
                                         "and audio [B, C, S] of the same B, got " +
                                         video.describe() + " and " + audio.describe());
    }
    return {
        {"video", with_sound_track(Value::video(frames, video.fps()), samples.to(at::kFloat), audio.sample_rate())}};
  }
};

StageInfo video_with_audio_info() {
  StageInfo info;
  info.type = "video_with_audio";
  info.description =
      "Attaches a sound track to a video value (replacing any it had); saving the video to .mp4, .mov or .mkv muxes "
      "it as AAC.";
  info.ports.inputs = {in_port("video", ValueType::Video, "[B, T, 3, H, W] frames"),
                       in_port("audio", ValueType::Audio, "[B, C, S] the sound track")};
  info.ports.outputs = {out_port("video", ValueType::Video, "the frames with the sound track")};
  info.create = [] { return std::make_unique<VideoWithAudioStage>(); };
  return info;
}

A2A_REGISTER_STAGE(video_with_audio_info);

}  // namespace
}  // namespace a2a
