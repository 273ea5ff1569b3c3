#include "media/video_io.h"

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <unordered_map>

#include "base/error.h"
#include "media/image_io.h"
#include "media/media_util.h"
#include "media/video_audio.h"

namespace a2a {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_video(const std::string& code, const std::string& path, const std::string& what) {
  throw_input_error(code, "video '" + path + "': " + what);
}

cv::VideoCapture open_capture(const std::string& path) {
  media_detail::check_readable_file(path, "video");
  const std::string problem = media_detail::video_container_problem(path);
  if (!problem.empty()) {
    fail_video(problem.find("truncated") != std::string::npos ? "truncated_file" : "corrupt_file", path, problem);
  }
  cv::VideoCapture cap;
  try {
    cap.open(path, cv::CAP_FFMPEG);
  } catch (const cv::Exception& e) {
    fail_video("corrupt_file", path, std::string("cannot be opened: ") + e.what());
  }
  if (!cap.isOpened()) {
    fail_video("corrupt_file", path, "cannot be opened as a video: the file is corrupt or in an unsupported format");
  }
  return cap;
}

at::Tensor frame_to_tensor(const cv::Mat& bgr) {
  cv::Mat rgb, as_float;
  if (bgr.channels() == 1)
    cv::cvtColor(bgr, rgb, cv::COLOR_GRAY2RGB);
  else if (bgr.channels() == 4)
    cv::cvtColor(bgr, rgb, cv::COLOR_BGRA2RGB);
  else
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const double scale = rgb.depth() == CV_16U ? 1.0 / 65535.0 : 1.0 / 255.0;
  rgb.convertTo(as_float, CV_32FC3, scale);
  return at::from_blob(as_float.data, {as_float.rows, as_float.cols, 3}, at::kFloat).permute({2, 0, 1}).clone();
}

// Decodes frames in order and keeps those at the wanted indices. Returns how many frames the
// stream held up to the last one read.
int64_t decode_indices(cv::VideoCapture& cap, const std::string& path, const std::vector<int64_t>& wanted_sorted,
                       std::unordered_map<int64_t, at::Tensor>* frames) {
  int64_t index = 0;
  size_t next = 0;
  cv::Mat mat;
  while (next < wanted_sorted.size()) {
    bool ok = false;
    try {
      ok = cap.grab();
    } catch (const cv::Exception& e) {
      fail_video("corrupt_file", path, std::string("decoding failed: ") + e.what());
    }
    if (!ok) break;
    if (index == wanted_sorted[next]) {
      if (!cap.retrieve(mat) || mat.empty())
        fail_video("corrupt_file", path, "frame " + std::to_string(index) + " cannot be decoded");
      (*frames)[index] = frame_to_tensor(mat);
      while (next < wanted_sorted.size() && wanted_sorted[next] == index) ++next;
    }
    ++index;
  }
  return index;
}

VideoInfo info_of(cv::VideoCapture& cap) {
  VideoInfo info;
  info.fps = cap.get(cv::CAP_PROP_FPS);
  info.frame_count = static_cast<int64_t>(std::llround(cap.get(cv::CAP_PROP_FRAME_COUNT)));
  info.width = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_WIDTH));
  info.height = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_HEIGHT));
  return info;
}

int64_t count_by_decoding(const std::string& path) {
  cv::VideoCapture cap = open_capture(path);
  int64_t n = 0;
  while (cap.grab()) ++n;
  return n;
}

// MP4 and AVI index their frames; FFmpeg estimates the count of other containers (Matroska, WebM,
// GIF) from duration x rate, which can be off by one.
bool container_indexes_frames(const std::string& path) {
  const std::string ext = media_detail::lower_extension(path);
  return ext == ".mp4" || ext == ".mov" || ext == ".m4v" || ext == ".avi";
}

void check_frame_size(const std::string& path, int64_t width, int64_t height, const VideoReadLimits& limits) {
  if (width > 0 && height > 0 && uint64_t(width) * uint64_t(height) > limits.max_frame_pixels)
    fail_video("too_large", path,
               "has " + std::to_string(width) + " x " + std::to_string(height) + " frames, over the limit of " +
                   std::to_string(limits.max_frame_pixels) + " pixels a frame");
}

void check_total_size(const std::string& path, size_t frames, uint64_t pixels, const VideoReadLimits& limits) {
  if (pixels > limits.max_total_pixels)
    fail_video("too_large", path,
               std::to_string(frames) + " frames hold " + std::to_string(pixels) + " pixels, over the limit of " +
                   std::to_string(limits.max_total_pixels) + " (read fewer frames)");
}

VideoInfo checked_info(cv::VideoCapture& cap, const std::string& path) {
  VideoInfo info = info_of(cap);
  if (!(info.fps > 0.0) || !std::isfinite(info.fps)) fail_video("corrupt_file", path, "has no valid frame rate");
  if (info.frame_count <= 0 || !container_indexes_frames(path)) info.frame_count = count_by_decoding(path);
  if (info.frame_count <= 0) fail_video("empty_video", path, "holds no frames");
  return info;
}

// Reads the frames `indices_for` picks; when the container overstated its frame count, the indices are
// picked again from the decoded count.
VideoData read_indices_with_count_fix(const std::string& path,
                                      const std::function<std::vector<int64_t>(const VideoInfo&)>& indices_for) {
  cv::VideoCapture cap = open_capture(path);
  VideoInfo info = checked_info(cap, path);
  std::vector<int64_t> indices = indices_for(info);
  std::vector<int64_t> sorted = indices;
  std::sort(sorted.begin(), sorted.end());
  std::unordered_map<int64_t, at::Tensor> frames;
  const int64_t decoded = decode_indices(cap, path, sorted, &frames);
  if (frames.size() < std::set<int64_t>(sorted.begin(), sorted.end()).size()) {
    // The container overstated its length (common for estimated counts): use the decoded count.
    if (decoded <= 0) fail_video("corrupt_file", path, "no frame could be decoded");
    info.frame_count = decoded;
    indices = indices_for(info);
    sorted = indices;
    std::sort(sorted.begin(), sorted.end());
    frames.clear();
    cv::VideoCapture again = open_capture(path);
    decode_indices(again, path, sorted, &frames);
    for (int64_t i : sorted)
      if (!frames.count(i)) fail_video("corrupt_file", path, "frame " + std::to_string(i) + " cannot be decoded");
  }
  std::vector<at::Tensor> ordered;
  ordered.reserve(indices.size());
  for (int64_t i : indices) ordered.push_back(frames.at(i));
  VideoData out;
  out.frames = ordered.empty() ? at::empty({0, 3, info.height, info.width}) : at::stack(ordered);
  out.fps = info.fps;
  out.info = info;
  return out;
}

}  // namespace

VideoInfo probe_video(const std::string& path) {
  cv::VideoCapture cap = open_capture(path);
  return checked_info(cap, path);
}

VideoData read_video(const std::string& path, int64_t max_frames, const VideoReadLimits& limits) {
  cv::VideoCapture cap = open_capture(path);
  VideoInfo info = info_of(cap);
  if (!(info.fps > 0.0) || !std::isfinite(info.fps)) fail_video("corrupt_file", path, "has no valid frame rate");
  check_frame_size(path, info.width, info.height, limits);
  std::vector<at::Tensor> frames;
  uint64_t pixels = 0;
  cv::Mat mat;
  while (max_frames <= 0 || static_cast<int64_t>(frames.size()) < max_frames) {
    bool ok = false;
    try {
      ok = cap.read(mat);
    } catch (const cv::Exception& e) {
      fail_video("corrupt_file", path, std::string("decoding failed: ") + e.what());
    }
    if (!ok || mat.empty()) break;
    check_frame_size(path, mat.cols, mat.rows, limits);
    pixels += uint64_t(mat.cols) * uint64_t(mat.rows);
    check_total_size(path, frames.size() + 1, pixels, limits);
    frames.push_back(frame_to_tensor(mat));
  }
  if (frames.empty()) fail_video("corrupt_file", path, "no frame could be decoded");
  if (max_frames <= 0 || info.frame_count <= 0) info.frame_count = static_cast<int64_t>(frames.size());
  VideoData out;
  out.frames = at::stack(frames);
  out.fps = info.fps;
  out.info = info;
  return out;
}

VideoData read_video_frames(const std::string& path, const std::vector<int64_t>& indices,
                            const VideoReadLimits& limits) {
  for (int64_t i : indices)
    if (i < 0) fail_video("bad_index", path, "frame index " + std::to_string(i) + " is negative");
  cv::VideoCapture cap = open_capture(path);
  VideoInfo info = checked_info(cap, path);
  check_frame_size(path, info.width, info.height, limits);
  check_total_size(path, indices.size(), indices.size() * uint64_t(info.width) * uint64_t(info.height), limits);
  std::vector<int64_t> sorted = indices;
  std::sort(sorted.begin(), sorted.end());
  std::unordered_map<int64_t, at::Tensor> frames;
  const int64_t decoded = decode_indices(cap, path, sorted, &frames);
  std::vector<at::Tensor> ordered;
  for (int64_t i : indices) {
    auto it = frames.find(i);
    if (it == frames.end()) {
      fail_video(
          "bad_index", path,
          "frame " + std::to_string(i) + " is past the end (the video has " + std::to_string(decoded) + " frames)");
    }
    ordered.push_back(it->second);
  }
  VideoData out;
  out.frames = ordered.empty() ? at::empty({0, 3, info.height, info.width}) : at::stack(ordered);
  out.fps = info.fps;
  out.info = info;
  return out;
}

std::vector<int64_t> uniform_frame_indices(int64_t frame_count, int64_t n) {
  std::vector<int64_t> out;
  if (n <= 0 || frame_count <= 0) return out;
  out.reserve(n);
  // torch.linspace(0, count - 1, n) in float32, then .long() (truncation), clamped to the range.
  auto positions = at::linspace(0.0, static_cast<double>(frame_count - 1), n, at::kFloat);
  for (int64_t i = 0; i < n; ++i) {
    int64_t idx = static_cast<int64_t>(positions[i].item<float>());
    out.push_back(std::clamp<int64_t>(idx, 0, frame_count - 1));
  }
  return out;
}

VideoData sample_frames_uniform(const std::string& path, int64_t n) {
  if (n <= 0) throw_input_error("bad_option", "sampling video '" + path + "': the number of frames must be positive");
  return read_indices_with_count_fix(path,
                                     [n](const VideoInfo& info) { return uniform_frame_indices(info.frame_count, n); });
}

std::vector<std::vector<int64_t>> uniform_clip_frame_indices(const VideoInfo& info, const ClipSampling& sampling) {
  if (sampling.clips <= 0 || !(sampling.clip_seconds > 0.0)) {
    throw_input_error("bad_option", "clip sampling needs a positive number of clips and a positive clip length");
  }
  const double duration = info.duration_seconds();
  const double max_start = std::max(duration - sampling.clip_seconds, 0.0);
  const int64_t clip_frames = std::max<int64_t>(1, std::llround(sampling.clip_seconds * info.fps));
  const int64_t per_clip = sampling.frames_per_clip > 0 ? sampling.frames_per_clip : clip_frames;
  std::vector<std::vector<int64_t>> clips;
  for (int64_t k = 0; k < sampling.clips; ++k) {
    const double start = max_start * k / sampling.clips;
    const int64_t first =
        std::min<int64_t>(static_cast<int64_t>(std::floor(start * info.fps + 1e-9)), info.frame_count - 1);
    std::vector<int64_t> clip;
    for (int64_t i : uniform_frame_indices(clip_frames, per_clip)) {
      clip.push_back(std::min(first + i, info.frame_count - 1));
    }
    clips.push_back(std::move(clip));
  }
  return clips;
}

at::Tensor sample_clips_uniform(const std::string& path, const ClipSampling& sampling, VideoInfo* info_out) {
  std::vector<std::vector<int64_t>> clips;
  VideoData data = read_indices_with_count_fix(path, [&](const VideoInfo& info) {
    clips = uniform_clip_frame_indices(info, sampling);
    std::vector<int64_t> flat;
    for (const auto& c : clips) flat.insert(flat.end(), c.begin(), c.end());
    return flat;
  });
  if (info_out) *info_out = data.info;
  const int64_t per_clip = static_cast<int64_t>(clips.front().size());
  return data.frames.view({sampling.clips, per_clip, 3, data.frames.size(2), data.frames.size(3)});
}

const char* video_write_format_name(VideoWriteFormat format) {
  switch (format) {
    case VideoWriteFormat::Mp4H264: return "MP4 (H.264 avc1)";
    case VideoWriteFormat::Mp4Mpeg4: return "MP4 (MPEG-4 Part 2 mp4v)";
    case VideoWriteFormat::AviMjpg: return "AVI (Motion JPEG)";
    case VideoWriteFormat::Gif: return "animated GIF";
    case VideoWriteFormat::PngFrames: return "PNG frame folder";
  }
  return "?";
}

namespace {

at::Tensor checked_frames(const at::Tensor& frames, const std::string& path) {
  at::Tensor f = frames.detach().to(at::kCPU, at::kFloat);
  if (f.dim() == 5 && f.size(0) == 1) f = f[0];
  if (f.dim() != 4 || f.size(1) != 3 || f.size(0) == 0 || f.size(2) == 0 || f.size(3) == 0) {
    throw_input_error("bad_shape", "cannot write video '" + path + "': expected [T, 3, H, W] or [1, T, 3, H, W], got " +
                                       std::string(c10::str(frames.sizes())));
  }
  return at::nan_to_num(f, 0.0).clamp(0.0, 1.0);
}

// [T, 3, H, W] in [0, 1] -> [T, H, W, 3] uint8 BGR
at::Tensor to_bgr_u8(const at::Tensor& frames) {
  return frames.mul(255.0).round().to(at::kByte).flip({1}).permute({0, 2, 3, 1}).contiguous();
}

bool write_with_opencv(const std::string& path, const at::Tensor& frames, double fps, const char* fourcc) {
  const int h = static_cast<int>(frames.size(2)), w = static_cast<int>(frames.size(3));
  cv::VideoWriter writer;
  try {
    writer.open(path, cv::CAP_FFMPEG, cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), fps,
                cv::Size(w, h), true);
  } catch (const cv::Exception&) {
    return false;
  }
  if (!writer.isOpened()) return false;
  at::Tensor bgr = to_bgr_u8(frames);
  for (int64_t t = 0; t < bgr.size(0); ++t) {
    cv::Mat mat(h, w, CV_8UC3, bgr[t].data_ptr<uint8_t>());
    writer.write(mat);
  }
  writer.release();
  std::error_code ec;
  return fs::exists(path, ec) && fs::file_size(path, ec) > 0;
}

void write_png_frames(const std::string& folder, const at::Tensor& frames) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw_input_error("write_failed", "cannot create frame folder '" + folder + "': " + ec.message());
  for (int64_t t = 0; t < frames.size(0); ++t) {
    char name[32];
    std::snprintf(name, sizeof(name), "%06lld.png", static_cast<long long>(t));
    write_image(frames[t], (fs::path(folder) / name).string());
  }
}

std::string frames_folder_for(const std::string& path) {
  fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "_frames")).string();
}

// 4:2:0 chroma needs even sides: an odd one gets its last row or column repeated.
at::Tensor even_sided(const at::Tensor& frames) {
  const int64_t pad_h = frames.size(2) % 2, pad_w = frames.size(3) % 2;
  if (!pad_h && !pad_w) return frames;
  return at::replication_pad2d(frames, {0, pad_w, 0, pad_h});
}

// H.264 (else MPEG-4 Part 2) through FFmpeg, index first; a PNG frame folder when FFmpeg can write neither
// and fallbacks are allowed.
VideoWriteResult write_through_ffmpeg(const std::string& path, const at::Tensor& frames, double fps,
                                      const VideoWriteOptions& options) {
  const at::Tensor even = even_sided(frames);
  try {
    VideoWriteResult result = mux_video(path, even, fps, nullptr);
    if (result.fallback && !options.allow_fallback) {
      std::error_code ec;
      fs::remove(path, ec);
      throw_input_error("encode_failed", "cannot write video '" + path + "': no H.264 encoder is available");
    }
    if (even.size(2) != frames.size(2) || even.size(3) != frames.size(3))
      result.note = "odd sides padded to " + std::to_string(even.size(3)) + "x" + std::to_string(even.size(2)) +
                    " for 4:2:0 chroma";
    return result;
  } catch (const Error& e) {
    if (e.code() != "encode_failed" || !options.allow_fallback) throw;
    VideoWriteResult result;
    result.format = VideoWriteFormat::PngFrames;
    result.path = frames_folder_for(path);
    result.fallback = true;
    write_png_frames(result.path, frames);
    result.note =
        "FFmpeg cannot write '" + path + "' (" + e.message() + "): wrote PNG frames to '" + result.path + "' instead";
    return result;
  }
}

}  // namespace

VideoWriteResult write_video(const std::string& path, const at::Tensor& frames_in, double fps,
                             const VideoWriteOptions& options) {
  at::Tensor frames = checked_frames(frames_in, path);
  if (!(fps > 0.0) || !std::isfinite(fps)) {
    throw_input_error("bad_fps",
                      "cannot write video '" + path + "': frame rate " + std::to_string(fps) + " is not positive");
  }
  const std::string ext = media_detail::lower_extension(path);
  VideoWriteResult result;
  result.path = path;
  if (ext.empty() || path.back() == '/') {
    result.format = VideoWriteFormat::PngFrames;
    write_png_frames(path, frames);
    return result;
  }
  if (ext == ".gif") {
    result.format = VideoWriteFormat::Gif;
    write_gif(path, frames, fps);
    return result;
  }
  if (ext == ".avi") {
    result.format = VideoWriteFormat::AviMjpg;
    if (!write_with_opencv(path, frames, fps, "MJPG")) {
      throw_input_error("encode_failed", "cannot write video '" + path + "': no Motion JPEG encoder");
    }
    return result;
  }
  if (ext == ".mp4" || ext == ".mkv" || ext == ".mov") return write_through_ffmpeg(path, frames, fps, options);
  throw_input_error("unsupported_format", "cannot write video '" + path +
                                              "': the extension is not .mp4, .mkv, .mov, .avi or .gif (or a folder)");
}

// ---- GIF ----

namespace {

class GifBitWriter {
 public:
  explicit GifBitWriter(std::vector<uint8_t>* out) : out_(out) {}
  void write(uint32_t code, int bits) {
    buffer_ |= code << count_;
    count_ += bits;
    while (count_ >= 8) {
      push(static_cast<uint8_t>(buffer_ & 0xFF));
      buffer_ >>= 8;
      count_ -= 8;
    }
  }
  void finish() {
    if (count_ > 0) push(static_cast<uint8_t>(buffer_ & 0xFF));
    buffer_ = 0;
    count_ = 0;
    flush_block();
    out_->push_back(0);  // block terminator
  }

 private:
  void push(uint8_t byte) {
    block_.push_back(byte);
    if (block_.size() == 255) flush_block();
  }
  void flush_block() {
    if (block_.empty()) return;
    out_->push_back(static_cast<uint8_t>(block_.size()));
    out_->insert(out_->end(), block_.begin(), block_.end());
    block_.clear();
  }
  std::vector<uint8_t>* out_;
  std::vector<uint8_t> block_;
  uint32_t buffer_ = 0;
  int count_ = 0;
};

// LZW with 8-bit minimum code size. The code width grows when the highest assigned code needs it,
// which is exactly when a decoder's next free slot reaches the same power of two.
void lzw_encode(const std::vector<uint8_t>& pixels, std::vector<uint8_t>* out) {
  const uint32_t clear_code = 256, end_code = 257;
  out->push_back(8);
  GifBitWriter bits(out);
  std::vector<int16_t> table(4096 * 256, -1);
  int code_size = 9;
  uint32_t max_code = end_code;
  bits.write(clear_code, code_size);
  uint32_t current = pixels[0];
  for (size_t i = 1; i < pixels.size(); ++i) {
    const uint8_t next = pixels[i];
    const int16_t found = table[current * 256 + next];
    if (found >= 0) {
      current = static_cast<uint32_t>(found);
      continue;
    }
    bits.write(current, code_size);
    table[current * 256 + next] = static_cast<int16_t>(++max_code);
    if (max_code >= (1u << code_size)) ++code_size;
    if (max_code == 4095) {
      bits.write(clear_code, code_size);
      std::fill(table.begin(), table.end(), -1);
      code_size = 9;
      max_code = end_code;
    }
    current = next;
  }
  bits.write(current, code_size);
  if (++max_code >= (1u << code_size) && code_size < 12) ++code_size;
  bits.write(end_code, code_size);
  bits.finish();
}

void put16(std::vector<uint8_t>* out, int v) {
  out->push_back(static_cast<uint8_t>(v & 0xFF));
  out->push_back(static_cast<uint8_t>((v >> 8) & 0xFF));
}

}  // namespace

void write_gif(const std::string& path, const at::Tensor& frames_in, double fps) {
  at::Tensor frames = checked_frames(frames_in, path);
  if (!(fps > 0.0) || !std::isfinite(fps)) {
    throw_input_error("bad_fps", "cannot write GIF '" + path + "': frame rate must be positive");
  }
  const int64_t t_count = frames.size(0), h = frames.size(2), w = frames.size(3);
  if (h > 65535 || w > 65535)
    throw_input_error("bad_shape", "cannot write GIF '" + path + "': frames larger than 65535");
  // Palette index = r * 42 + g * 6 + b with 6 red, 7 green and 6 blue levels (252 colours).
  auto levels = at::tensor({5.0f, 6.0f, 5.0f}).view({1, 3, 1, 1});
  auto q = frames.mul(levels).round().to(at::kLong);
  auto index = (q.select(1, 0) * 42 + q.select(1, 1) * 6 + q.select(1, 2)).to(at::kByte).contiguous();

  std::vector<uint8_t> out = {'G', 'I', 'F', '8', '9', 'a'};
  put16(&out, static_cast<int>(w));
  put16(&out, static_cast<int>(h));
  out.push_back(0xF7);  // global colour table of 256 entries, 8-bit colour resolution
  out.push_back(0);
  out.push_back(0);
  for (int i = 0; i < 256; ++i) {
    const int r = i / 42, g = (i / 6) % 7, b = i % 6;
    const bool used = i < 252;
    out.push_back(used ? static_cast<uint8_t>(std::lround(r * 255.0 / 5)) : 0);
    out.push_back(used ? static_cast<uint8_t>(std::lround(g * 255.0 / 6)) : 0);
    out.push_back(used ? static_cast<uint8_t>(std::lround(b * 255.0 / 5)) : 0);
  }
  // Loop forever (NETSCAPE2.0 application extension).
  const uint8_t loop[] = {0x21, 0xFF, 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0', 0x03, 0x01, 0, 0, 0};
  out.insert(out.end(), std::begin(loop), std::end(loop));
  for (int64_t t = 0; t < t_count; ++t) {
    // Delays in centiseconds, distributed so that the total matches the frame rate.
    const int delay = static_cast<int>(std::lround((t + 1) * 100.0 / fps) - std::lround(t * 100.0 / fps));
    out.insert(out.end(), {0x21, 0xF9, 0x04, 0x00});
    put16(&out, std::max(delay, 1));
    out.insert(out.end(), {0x00, 0x00});
    out.push_back(0x2C);
    put16(&out, 0);
    put16(&out, 0);
    put16(&out, static_cast<int>(w));
    put16(&out, static_cast<int>(h));
    out.push_back(0x00);
    const uint8_t* p = index[t].data_ptr<uint8_t>();
    lzw_encode(std::vector<uint8_t>(p, p + h * w), &out);
  }
  out.push_back(0x3B);
  media_detail::write_file_bytes(path, out);
}

}  // namespace a2a
