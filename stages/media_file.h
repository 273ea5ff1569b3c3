#pragma once
// Graph inputs given as files, and graph outputs saved to files, chosen by extension:
//   image  .png .jpg .jpeg .bmp .webp          (see media/image_io.h for bit depth and alpha)
//   audio  .wav .flac .ogg                     (see media/audio_io.h)
//   video  .mp4 .mkv .mov .avi .webm .gif      (see media/video_io.h; saving .mp4 falls back when
//                                               no MP4 encoder exists, and says so)
//   text   .txt .md .json                      (UTF-8 text)
//   tensor .safetensors                        (embedding, latent, tokens and tensor values: the tensor under
//                                               the type's name, "mask" and aux tensors beside it, the type
//                                               in the metadata; the whole batch in one file)
// Values are batched: an image value is [B, 3, H, W], audio [B, C, T], video [B, T, 3, H, W]. Loading
// gives B = 1; saving B > 1 writes one file per item, "name_0.png", "name_1.png", ...
#include <optional>
#include <string>
#include <vector>

#include "pipeline/value.h"

namespace a2a {

enum class MediaKind { Image, Audio, Video, Text, Tensors, Unknown };
MediaKind media_kind_for_path(const std::string& path);
const char* media_kind_name(MediaKind kind);

// A video value's sound track travels with it as two auxiliary tensors: "audio" [B, C, S] float samples and
// "audio_sample_rate" (a 0-d int64). Loading an MP4/MKV/MOV/AVI attaches its audio track when it has one;
// saving to .mp4/.mov/.mkv muxes it back as AAC.
Value with_sound_track(const Value& video, const at::Tensor& samples, int64_t sample_rate);
// The sound track as an audio value [B, C, S], or nullopt for a silent video.
std::optional<Value> sound_track(const Value& video);

// Loads a file as a value of the given type. Throws a2a::Error (Input) naming the file when the file
// is missing, empty, truncated, corrupt, or of the wrong kind for the type (a .wav for an image).
Value load_media_value(const std::string& path, ValueType type);

struct SavedFile {
  std::string path;    // the file (or frame folder) written
  std::string format;  // e.g. "PNG", "WAV PCM16", "MP4 (H.264 avc1)"
  std::string note;    // non-empty when a fallback was taken
};

// Writes the value by the path's extension. Each file is written under a temporary name in the same
// folder and renamed into place, so a reader never sees a half-written file.
// Throws a2a::Error (Input) when the value cannot be stored in that format.
std::vector<SavedFile> save_value(const Value& value, const std::string& path);

// Why a value of `type` cannot be saved under `path`'s extension (an image as .mp4), or "" when it can or
// when only the value itself can tell (a generic tensor). Validation asks this before anything runs.
std::string media_extension_problem(ValueType type, const std::string& path);

}  // namespace a2a
