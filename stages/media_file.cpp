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
#include "media/video_io.h"

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
  return MediaKind::Unknown;
}

const char* media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image: return "image";
    case MediaKind::Audio: return "audio";
    case MediaKind::Video: return "video";
    case MediaKind::Text: return "text";
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
    default: return MediaKind::Unknown;
  }
}

const char* extensions_for(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image: return ".png, .jpg, .jpeg, .bmp or .webp";
    case MediaKind::Audio: return ".wav, .flac or .ogg";
    case MediaKind::Video: return ".mp4, .mkv, .mov, .avi, .webm or .gif";
    case MediaKind::Text: return ".txt, .md or .json";
    case MediaKind::Unknown: break;
  }
  return "";
}

std::string read_text(const std::string& path) {
  auto bytes = media_detail::read_file_bytes(path, "text file");
  return std::string(bytes.begin(), bytes.end());
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
        VideoWriteResult r = write_video(temp, value.tensor()[item], value.fps());
        saved.format = video_write_format_name(r.format);
        saved.note = r.note;
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

Value load_media_value(const std::string& path, ValueType type) {
  const MediaKind wanted = kind_for_type(type);
  if (wanted == MediaKind::Unknown) {
    throw_input_error("unsupported_input_type", "cannot load '" + path + "' as a " + value_type_name(type) +
                                                    " value: only image, audio, video and text inputs come from files");
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
      return Value::video(video.frames.unsqueeze(0), video.fps);
    }
    case MediaKind::Text: return Value::text(read_text(path));
    case MediaKind::Unknown: break;
  }
  throw_input_error("unsupported_input_type", "cannot load '" + path + "'");
}

std::string media_extension_problem(ValueType type, const std::string& path) {
  const MediaKind wanted = kind_for_type(type);
  if (wanted == MediaKind::Unknown || media_kind_for_path(path) == wanted) return "";
  const std::string ext = media_detail::lower_extension(path);
  return "cannot save a " + std::string(value_type_name(type)) + " value to '" + path + "': use " +
         extensions_for(wanted) + (ext.empty() ? std::string(" (the name has no extension)") : " (not '" + ext + "')");
}

std::vector<SavedFile> save_value(const Value& value, const std::string& path) {
  const MediaKind kind = media_kind_for_path(path);
  if (kind_for_type(value.type()) == MediaKind::Unknown) {
    throw_input_error("unsupported_output_type", "cannot save a " + std::string(value_type_name(value.type())) +
                                                     " value to '" + path +
                                                     "': only image, audio, video and text values "
                                                     "can be saved as media files");
  }
  if (const std::string problem = media_extension_problem(value.type(), path); !problem.empty())
    throw_input_error("wrong_media_kind", problem);
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    throw_input_error("write_failed", "cannot save '" + path + "': folder '" + parent.string() + "' does not exist");
  }
  if (kind == MediaKind::Text) return {save_one(value, 0, path, kind)};

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
