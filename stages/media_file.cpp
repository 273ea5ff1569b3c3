#include "stages/media_file.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "media/audio_io.h"
#include "media/image_io.h"
#include "media/media_util.h"
#include "media/video_audio.h"
#include "media/video_io.h"
#include "weights/safetensors.h"

namespace a2a {

namespace fs = std::filesystem;

MediaKind media_kind_for_path(const std::string& path) {
  if (image_format_for_path(path, nullptr)) return MediaKind::Image;
  if (audio_container_for_path(path, nullptr)) return MediaKind::Audio;
  const std::string ext = media_detail::lower_extension(path);
  if (ext == ".mp4" || ext == ".mkv" || ext == ".mov" || ext == ".avi" || ext == ".webm" || ext == ".gif" ||
      ext == ".m4v") {
    return MediaKind::Video;
  }
  if (ext == ".txt" || ext == ".md" || ext == ".json") return MediaKind::Text;
  if (ext == ".safetensors") return MediaKind::Tensors;
  return MediaKind::Unknown;
}

const char* media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image: return "image";
    case MediaKind::Audio: return "audio";
    case MediaKind::Video: return "video";
    case MediaKind::Text: return "text";
    case MediaKind::Tensors: return "safetensors";
    case MediaKind::Unknown: return "unknown";
  }
  return "?";
}

namespace {

MediaKind kind_for_type(ValueType type) {
  switch (type) {
    case ValueType::Image: return MediaKind::Image;
    case ValueType::Audio: return MediaKind::Audio;
    case ValueType::Video: return MediaKind::Video;
    case ValueType::Text: return MediaKind::Text;
    case ValueType::Embedding:
    case ValueType::Latent:
    case ValueType::Tokens:
    case ValueType::Tensor: return MediaKind::Tensors;
  }
  return MediaKind::Unknown;
}

const char* extensions_for(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image: return ".png, .jpg, .jpeg, .bmp or .webp";
    case MediaKind::Audio: return ".wav, .flac or .ogg";
    case MediaKind::Video: return ".mp4, .mkv, .mov, .avi, .webm or .gif";
    case MediaKind::Text: return ".txt, .md or .json";
    case MediaKind::Tensors: return ".safetensors";
    case MediaKind::Unknown: break;
  }
  return "";
}

// A tensor-carrying value as one safetensors file, and back.
constexpr const char* kValueTypeKey = "a2a_value_type";

SavedFile save_tensors(const Value& value, const std::string& path) {
  std::map<std::string, at::Tensor> tensors;
  tensors[value_type_name(value.type())] = value.tensor();
  if (value.mask().defined()) tensors["mask"] = value.mask();
  for (const auto& kv : value.aux()) tensors["aux." + kv.first] = kv.second;
  for (const auto& kv : tensors) {
    if (!kv.second.defined()) throw_input_error("bad_shape", "cannot save " + value.describe() + " to '" + path + "'");
  }
  save_safetensors(path, tensors, {{kValueTypeKey, value_type_name(value.type())}});
  return {path, "safetensors", ""};
}

Value load_tensors(const std::string& path, ValueType type) {
  std::map<std::string, at::Tensor> tensors = load_safetensors(path);
  const std::string name = value_type_name(type);
  auto main = tensors.find(name);
  if (main == tensors.end()) {
    throw_input_error("wrong_media_kind", "'" + path + "' holds no tensor named '" + name + "' (a " + name +
                                              " value saved by a2a has one)");
  }
  auto mask = tensors.find("mask");
  const at::Tensor m = mask == tensors.end() ? at::Tensor() : mask->second.clone();
  Value value = type == ValueType::Embedding ? Value::embedding(main->second.clone(), m)
                : type == ValueType::Tokens  ? Value::tokens(main->second.clone(), m)
                : type == ValueType::Latent  ? Value::latent(main->second.clone())
                                             : Value::tensor(main->second.clone());
  for (const auto& kv : tensors)
    if (kv.first.rfind("aux.", 0) == 0) value = value.with_aux(kv.first.substr(4), kv.second.clone());
  return value;
}

std::string read_text(const std::string& path) {
  auto bytes = media_detail::read_file_bytes(path, "text file");
  return std::string(bytes.begin(), bytes.end());
}

// The containers write_video_with_audio muxes a sound track into.
bool container_takes_sound(const std::string& path) {
  const std::string ext = media_detail::lower_extension(path);
  return ext == ".mp4" || ext == ".m4v" || ext == ".mov" || ext == ".mkv";
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::string item_path(const std::string& path, int64_t index, int64_t count) {
  if (count == 1) return path;
  fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "_" + std::to_string(index) + p.extension().string())).string();
}

SavedFile save_one(const Value& value, int64_t item, const std::string& path, MediaKind kind) {
  const std::string temp = temporary_path_beside(path);
  SavedFile saved;
  saved.path = path;
  try {
    switch (kind) {
      case MediaKind::Image: {
        ImageFormat format;
        image_format_for_path(path, &format);
        write_image(value.tensor()[item], temp);
        saved.format = image_format_name(format);
        break;
      }
      case MediaKind::Audio: {
        write_audio(temp, value.tensor()[item], value.sample_rate());
        AudioContainer container;
        audio_container_for_path(path, &container);
        saved.format = container == AudioContainer::Wav    ? "WAV PCM16"
                       : container == AudioContainer::Flac ? "FLAC PCM16"
                                                           : "OGG Vorbis";
        break;
      }
      case MediaKind::Video: {
        const std::optional<Value> sound = sound_track(value);
        const bool muxed = sound && container_takes_sound(path);
        VideoWriteResult r =
            muxed ? write_video_with_audio(temp, value.tensor()[item], value.fps(),
                                           AudioData{sound->tensor()[item].contiguous(), sound->sample_rate()})
                  : write_video(temp, value.tensor()[item], value.fps());
        if (muxed) saved.format += " + AAC audio";
        saved.format = video_write_format_name(r.format) + saved.format;
        saved.note = r.note;
        if (sound && !muxed) saved.note = "the sound track was left out: only .mp4, .mov and .mkv hold one here";
        if (r.path != temp) {
          // The frame folder fallback: name the folder after the requested file.
          const std::string folder =
              (fs::path(path).parent_path() / (fs::path(path).stem().string() + "_frames")).string();
          move_into_place(r.path, folder);
          saved.path = folder;
          saved.note = "no MP4 encoder is available: wrote PNG frames to '" + folder + "' instead";
          return saved;
        }
        break;
      }
      case MediaKind::Text: {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out << value.text();
        out.close();
        if (!out) throw_input_error("write_failed", "cannot write text file '" + path + "'");
        saved.format = "text";
        break;
      }
      case MediaKind::Tensors:
      case MediaKind::Unknown: break;
    }
  } catch (const Error& e) {
    remove_quietly(temp);
    // Name the file the user asked for, not the temporary one.
    std::string message = e.message();
    for (size_t at = message.find(temp); at != std::string::npos; at = message.find(temp, at + path.size())) {
      message.replace(at, temp.size(), path);
    }
    throw Error(e.kind(), e.code(), message, e.where());
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
  move_into_place(temp, path);
  return saved;
}

}  // namespace

Value with_sound_track(const Value& video, const at::Tensor& samples, int64_t sample_rate) {
  return video.with_aux("audio", samples).with_aux("audio_sample_rate", at::scalar_tensor(sample_rate, at::kLong));
}

std::optional<Value> sound_track(const Value& video) {
  const auto& aux = video.aux();
  auto samples = aux.find("audio");
  auto rate = aux.find("audio_sample_rate");
  if (samples == aux.end() || rate == aux.end() || samples->second.dim() != 3 || samples->second.size(2) == 0)
    return std::nullopt;
  return Value::audio(samples->second, rate->second.item<int64_t>());
}

Value load_media_value(const std::string& path, ValueType type) {
  const MediaKind wanted = kind_for_type(type);
  if (wanted == MediaKind::Unknown) {
    throw_input_error("unsupported_input_type",
                      "cannot load '" + path + "' as a " + value_type_name(type) +
                          " value: only image, audio, video, text and tensor (.safetensors) inputs come from files");
  }
  const MediaKind kind = media_kind_for_path(path);
  if (kind != wanted) {
    const std::string ext = media_detail::lower_extension(path);
    throw_input_error(
        "wrong_media_kind",
        "cannot load '" + path + "' as a " + value_type_name(type) + " input: " +
            (kind == MediaKind::Unknown
                 ? "the extension '" + ext + "' is not a known media type"
                 : std::string(kind == MediaKind::Video || kind == MediaKind::Text ? "it is a " : "it is an ") +
                       media_kind_name(kind) + " file") +
            " (expected " + extensions_for(wanted) + ")");
  }
  switch (wanted) {
    case MediaKind::Image: return Value::image(read_image(path).unsqueeze(0));
    case MediaKind::Audio: {
      AudioData audio = read_audio(path);
      return Value::audio(audio.samples.unsqueeze(0), audio.sample_rate);
    }
    case MediaKind::Video: {
      VideoData video = read_video(path);
      Value value = Value::video(video.frames.unsqueeze(0), video.fps);
      if (std::optional<AudioData> audio = read_video_audio_track(path))
        value = with_sound_track(value, audio->samples.unsqueeze(0), audio->sample_rate);
      return value;
    }
    case MediaKind::Text: return Value::text(read_text(path));
    case MediaKind::Tensors: return load_tensors(path, type);
    case MediaKind::Unknown: break;
  }
  throw_input_error("unsupported_input_type", "cannot load '" + path + "'");
}

std::string media_extension_problem(ValueType type, const std::string& path) {
  const MediaKind wanted = kind_for_type(type);
  const MediaKind given = media_kind_for_path(path);
  // A Tensor port may carry any value (an image, a mel spectrogram): only the value itself can tell.
  if (given == wanted || (type == ValueType::Tensor && given != MediaKind::Unknown)) return "";
  const std::string ext = media_detail::lower_extension(path);
  return "cannot save a " + std::string(value_type_name(type)) + " value to '" + path + "': use " +
         extensions_for(wanted) + (ext.empty() ? std::string(" (the name has no extension)") : " (not '" + ext + "')");
}

std::vector<SavedFile> save_value(const Value& value, const std::string& path) {
  const MediaKind kind = media_kind_for_path(path);
  if (kind_for_type(value.type()) == MediaKind::Tensors && kind != MediaKind::Tensors) {
    throw_input_error("unsupported_output_type", "cannot save a " + std::string(value_type_name(value.type())) +
                                                     " value to '" + path +
                                                     "': only image, audio, video and text values "
                                                     "can be saved as media files; this one saves as .safetensors");
  }
  if (const std::string problem = media_extension_problem(value.type(), path); !problem.empty())
    throw_input_error("wrong_media_kind", problem);
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    throw_input_error("write_failed", "cannot save '" + path + "': folder '" + parent.string() + "' does not exist");
  }
  if (kind == MediaKind::Text) return {save_one(value, 0, path, kind)};
  if (kind == MediaKind::Tensors) return {save_tensors(value, path)};

  const at::Tensor& t = value.tensor();
  const int64_t expected_dim = kind == MediaKind::Video ? 5 : kind == MediaKind::Image ? 4 : 3;
  if (!t.defined() || t.dim() != expected_dim || t.size(0) == 0) {
    throw_input_error("bad_shape", "cannot save " + value.describe() + " to '" + path + "': expected a batched " +
                                       value_type_name(value.type()) + " tensor with " + std::to_string(expected_dim) +
                                       " dimensions");
  }
  std::vector<SavedFile> saved;
  const int64_t batch = t.size(0);
  for (int64_t b = 0; b < batch; ++b) saved.push_back(save_one(value, b, item_path(path, b, batch), kind));
  return saved;
}

}  // namespace a2a
