#include "media/video_audio.h"

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
}

#if LIBAVUTIL_VERSION_INT < AV_VERSION_INT(57, 24, 100)
#error "media/video_audio.cpp needs FFmpeg 5.1 or newer (AVChannelLayout, swr_alloc_set_opts2)"
#endif

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "media/media_util.h"

namespace a2a {

namespace {

// ---- FFmpeg objects, each freed by its owner ----

struct AvInputCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct AvOutputCloser {
  void operator()(AVFormatContext* c) const {
    if (c->pb && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct AvCodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct AvFrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct AvPacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwrFree {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
using AvInput = std::unique_ptr<AVFormatContext, AvInputCloser>;
using AvOutput = std::unique_ptr<AVFormatContext, AvOutputCloser>;
using AvCodec = std::unique_ptr<AVCodecContext, AvCodecCloser>;
using AvFrame = std::unique_ptr<AVFrame, AvFrameFree>;
using AvPacket = std::unique_ptr<AVPacket, AvPacketFree>;
using SwrPtr = std::unique_ptr<SwrContext, SwrFree>;

struct AvOptions {
  AVDictionary* dict = nullptr;
  AvOptions() = default;
  AvOptions(const AvOptions&) = delete;
  AvOptions& operator=(const AvOptions&) = delete;
  ~AvOptions() { av_dict_free(&dict); }
  void set(const char* key, const char* value) { av_dict_set(&dict, key, value, 0); }
};

// A file being written that disappears unless it was published.
struct TemporaryFile {
  std::string path;
  bool published = false;
  explicit TemporaryFile(std::string p) : path(std::move(p)) {}
  ~TemporaryFile() {
    if (!published) std::remove(path.c_str());
  }
};

AvFrame new_frame() {
  AvFrame f(av_frame_alloc());
  if (!f) throw Error(ErrorKind::Internal, "out_of_memory", "cannot allocate an FFmpeg frame");
  return f;
}

AvPacket new_packet() {
  AvPacket p(av_packet_alloc());
  if (!p) throw Error(ErrorKind::Internal, "out_of_memory", "cannot allocate an FFmpeg packet");
  return p;
}

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// Our errors say what went wrong; FFmpeg's own log lines would only repeat it on stderr. OpenCV sets
// the level again when its FFmpeg backend starts, so every entry point silences it.
void silence_ffmpeg_log() { av_log_set_level(AV_LOG_QUIET); }

// ---- reading ----

// The demuxers a video may come in. Playlists and concatenation (hls, concat, ...) would open other
// files or URLs; only local files are read at all.
constexpr const char* kVideoDemuxers = "mov,matroska,avi,mpegts,mpeg,flv,ogg,asf,gif";

[[noreturn]] void fail_track(const std::string& code, const std::string& path, const std::string& what) {
  throw_input_error(code, "video '" + path + "': " + what);
}

std::string code_for_av_error(int err) {
  if (err == AVERROR_EOF) return "truncated_file";
  if (err == AVERROR_DECODER_NOT_FOUND || err == AVERROR_DEMUXER_NOT_FOUND || err == AVERROR_PATCHWELCOME ||
      err == AVERROR(ENOSYS))
    return "unsupported_format";
  if (err == AVERROR(ENOMEM)) return "too_large";
  return "corrupt_file";
}

AvInput open_video_container(const std::string& path) {
  AvOptions options;
  options.set("protocol_whitelist", "file");
  options.set("format_whitelist", kVideoDemuxers);
  AVFormatContext* raw = nullptr;
  // "file:" keeps a name such as "concat:a|b" or "http://..." a file name.
  const int err = avformat_open_input(&raw, ("file:" + path).c_str(), nullptr, &options.dict);
  if (err < 0) {
    // EINVAL: the demuxer FFmpeg found is not on the list.
    fail_track(err == AVERROR(EINVAL) ? "unsupported_format" : code_for_av_error(err), path,
               err == AVERROR(EINVAL) ? "is not in a video container we read (MP4/MOV, MKV/WebM, AVI, ...)"
                                      : "cannot be opened: " + av_error_text(err));
  }
  AvInput input(raw);
  const int info = avformat_find_stream_info(input.get(), nullptr);
  if (info < 0) fail_track(code_for_av_error(info), path, "its streams cannot be read: " + av_error_text(info));
  return input;
}

std::string first_audio_codec_name(const AVFormatContext* input) {
  for (unsigned i = 0; i < input->nb_streams; ++i) {
    const AVCodecParameters* par = input->streams[i]->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO) return avcodec_get_name(par->codec_id);
  }
  return "?";
}

AvCodec open_track_decoder(const std::string& path, const AVStream* stream, const AVCodec* codec) {
  AvCodec decoder(avcodec_alloc_context3(codec));
  if (!decoder) throw Error(ErrorKind::Internal, "out_of_memory", "cannot allocate an FFmpeg decoder");
  int err = avcodec_parameters_to_context(decoder.get(), stream->codecpar);
  if (err >= 0) {
    decoder->pkt_timebase = stream->time_base;
    decoder->thread_count = 1;
    err = avcodec_open2(decoder.get(), codec, nullptr);
  }
  if (err < 0) {
    fail_track(code_for_av_error(err), path,
               std::string("its ") + codec->name + " audio track cannot be decoded: " + av_error_text(err));
  }
  return decoder;
}

// Decoded frames converted to float planar and appended per channel, within the sample bound.
class TrackCollector {
 public:
  TrackCollector(const std::string& path, const AudioTrackLimits& limits) : path_(path), limits_(limits) {}

  void append(AVFrame* frame) {
    if (frame->nb_samples <= 0) return;
    const int channels = frame->ch_layout.nb_channels;
    if (channels <= 0 || channels > kMaxChannels || frame->sample_rate <= 0)
      fail_track("corrupt_file", path_,
                 "its audio track has " + std::to_string(channels) + " channels at " +
                     std::to_string(frame->sample_rate) + " Hz");
    if (channels_.empty()) {
      channels_.resize(static_cast<size_t>(channels));
      sample_rate_ = frame->sample_rate;
    } else if (channels != static_cast<int>(channels_.size()) || frame->sample_rate != sample_rate_) {
      fail_track("corrupt_file", path_, "its audio track changes its channel count or sample rate midway");
    }
    const uint64_t total = (uint64_t(frames_) + uint64_t(frame->nb_samples)) * uint64_t(channels);
    if (total > limits_.max_samples) {
      fail_track("too_large", path_,
                 "its audio track decodes to more than " + std::to_string(limits_.max_samples) +
                     " samples (frames x channels), the limit");
    }
    if (!swr_ || frame->format != swr_format_) configure(frame);
    convert(frame->extended_data, frame->nb_samples);
  }

  // What the converter still holds (nothing when the rate is unchanged, as here).
  void finish() {
    if (swr_) convert(nullptr, 0);
  }

  std::optional<AudioData> result() {
    if (frames_ == 0) return std::nullopt;
    const auto c = static_cast<int64_t>(channels_.size());
    AudioData out;
    out.samples = at::empty({c, frames_}, at::kFloat);
    for (int64_t i = 0; i < c; ++i)
      std::memcpy(out.samples[i].data_ptr<float>(), channels_[i].data(), sizeof(float) * frames_);
    out.sample_rate = sample_rate_;
    return out;
  }

 private:
  static constexpr int kMaxChannels = 1024;

  // Non-const: FFmpeg 5.1 takes the layouts by non-const pointer.
  void configure(AVFrame* frame) {
    SwrContext* raw = nullptr;
    int err = swr_alloc_set_opts2(&raw, &frame->ch_layout, AV_SAMPLE_FMT_FLTP, frame->sample_rate, &frame->ch_layout,
                                  static_cast<AVSampleFormat>(frame->format), frame->sample_rate, 0, nullptr);
    swr_.reset(raw);
    if (err >= 0) err = swr_init(swr_.get());
    if (err < 0) {
      fail_track("unsupported_format", path_,
                 std::string("its audio samples (") + av_get_sample_fmt_name(AVSampleFormat(frame->format)) +
                     ") cannot be converted: " + av_error_text(err));
    }
    swr_format_ = frame->format;
  }

  void convert(const uint8_t* const* in, int in_samples) {
    const int room = swr_get_out_samples(swr_.get(), in_samples);
    if (room <= 0) return;
    std::vector<uint8_t*> out(channels_.size());
    for (size_t c = 0; c < channels_.size(); ++c) {
      channels_[c].resize(static_cast<size_t>(frames_ + room));
      out[c] = reinterpret_cast<uint8_t*>(channels_[c].data() + frames_);
    }
    const int got = swr_convert(swr_.get(), out.data(), room, const_cast<const uint8_t**>(in), in_samples);
    if (got < 0) fail_track("corrupt_file", path_, "its audio samples cannot be converted: " + av_error_text(got));
    frames_ += got;
    for (auto& channel : channels_) channel.resize(static_cast<size_t>(frames_));
  }

  const std::string& path_;
  const AudioTrackLimits& limits_;
  SwrPtr swr_;
  int swr_format_ = -1;
  std::vector<std::vector<float>> channels_;
  int64_t frames_ = 0;
  int sample_rate_ = 0;
};

// Takes every frame the decoder has ready; returns false once it has given its last.
bool drain_decoder(AVCodecContext* decoder, AVFrame* frame, TrackCollector* track, const std::string& path) {
  while (true) {
    const int err = avcodec_receive_frame(decoder, frame);
    if (err == AVERROR(EAGAIN)) return true;
    if (err == AVERROR_EOF) return false;
    if (err < 0) fail_track("corrupt_file", path, "its audio track does not decode: " + av_error_text(err));
    track->append(frame);
    av_frame_unref(frame);
  }
}

void decode_track(AVFormatContext* input, int index, AVCodecContext* decoder, TrackCollector* track,
                  const std::string& path) {
  AvPacket packet = new_packet();
  AvFrame frame = new_frame();
  while (true) {
    const int err = av_read_frame(input, packet.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) fail_track(code_for_av_error(err), path, "reading its packets failed: " + av_error_text(err));
    if (packet->stream_index == index) {
      int sent = avcodec_send_packet(decoder, packet.get());
      if (sent == AVERROR(EAGAIN)) {  // the decoder is full: take its frames, then it takes the packet
        drain_decoder(decoder, frame.get(), track, path);
        sent = avcodec_send_packet(decoder, packet.get());
      }
      if (sent < 0) fail_track("corrupt_file", path, "its audio track does not decode: " + av_error_text(sent));
      drain_decoder(decoder, frame.get(), track, path);
    }
    av_packet_unref(packet.get());
  }
  avcodec_send_packet(decoder, nullptr);
  while (drain_decoder(decoder, frame.get(), track, path)) {
  }
  track->finish();
}

}  // namespace

std::optional<AudioData> read_video_audio_track(const std::string& path, const AudioTrackLimits& limits) {
  media_detail::check_readable_file(path, "video");
  const std::string problem = media_detail::video_container_problem(path);
  if (!problem.empty())
    fail_track(problem.find("truncated") != std::string::npos ? "truncated_file" : "corrupt_file", path, problem);
  silence_ffmpeg_log();
  AvInput input = open_video_container(path);
  const AVCodec* codec = nullptr;
  const int index = av_find_best_stream(input.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (index == AVERROR_STREAM_NOT_FOUND) return std::nullopt;
  if (index == AVERROR_DECODER_NOT_FOUND || (index >= 0 && !codec)) {
    fail_track("unsupported_format", path,
               "its audio track is " + first_audio_codec_name(input.get()) + ", which this FFmpeg cannot decode");
  }
  if (index < 0) fail_track("corrupt_file", path, "its audio track cannot be read: " + av_error_text(index));
  for (unsigned i = 0; i < input->nb_streams; ++i)
    input->streams[i]->discard = static_cast<int>(i) == index ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  AvCodec decoder = open_track_decoder(path, input->streams[index], codec);
  TrackCollector track(path, limits);
  decode_track(input.get(), index, decoder.get(), &track, path);
  return track.result();
}

// ---- writing ----

namespace {

// MP4/MOV top-level boxes in order: true when moov comes before mdat.
bool moov_before_mdat(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const auto end = static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  uint64_t offset = 0;
  unsigned char head[16];
  while (in.seekg(static_cast<std::streamoff>(offset)) && in.read(reinterpret_cast<char*>(head), 8)) {
    uint64_t size = (uint64_t{head[0]} << 24) | (uint64_t{head[1]} << 16) | (uint64_t{head[2]} << 8) | head[3];
    const std::string type(reinterpret_cast<char*>(head) + 4, 4);
    if (type == "moov") return true;
    if (type == "mdat") return false;
    if (size == 1) {
      if (!in.read(reinterpret_cast<char*>(head + 8), 8)) return false;
      size = 0;
      for (int i = 8; i < 16; ++i) size = (size << 8) | head[i];
    }
    if (size < 8 || size > end - offset) return false;  // 0 = to the end of the file, or a broken box
    offset += size;
  }
  return false;
}

}  // namespace

VideoStreamProbe probe_video_file(const std::string& path) {
  silence_ffmpeg_log();
  media_detail::check_readable_file(path, "video");
  if (const std::string problem = media_detail::video_container_problem(path); !problem.empty())
    fail_track(problem.find("truncated") != std::string::npos ? "truncated_file" : "corrupt_file", path, problem);
  AvInput input = open_video_container(path);
  const int index = av_find_best_stream(input.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) fail_track("unsupported_format", path, "has no video stream");
  const AVStream* stream = input->streams[index];
  const AVCodecParameters* par = stream->codecpar;
  VideoStreamProbe probe;
  probe.container = input->iformat->name;
  probe.video_codec = avcodec_get_name(par->codec_id);
  const char* pixel_format = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
  probe.pixel_format = pixel_format ? pixel_format : "";
  const char* profile = avcodec_profile_name(par->codec_id, par->profile);
  probe.profile = profile ? profile : "";
  probe.width = par->width;
  probe.height = par->height;
  probe.fps = stream->avg_frame_rate.den ? av_q2d(stream->avg_frame_rate) : 0.0;
  for (unsigned i = 0; i < input->nb_streams; ++i)
    if (input->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && probe.audio_codec.empty())
      probe.audio_codec = avcodec_get_name(input->streams[i]->codecpar->codec_id);
  AvPacket packet = new_packet();
  while (av_read_frame(input.get(), packet.get()) >= 0) {
    if (packet->stream_index == index) ++probe.frames;
    av_packet_unref(packet.get());
  }
  const std::string ext = media_detail::lower_extension(path);
  probe.index_first = (ext == ".mp4" || ext == ".m4v" || ext == ".mov") && moov_before_mdat(path);
  return probe;
}

namespace {

[[noreturn]] void fail_mux(const std::string& code, const std::string& path, const std::string& what) {
  throw_input_error(code, "cannot write video '" + path + "': " + what);
}

void check_av(int err, const std::string& path, const std::string& doing) {
  if (err < 0) fail_mux("encode_failed", path, doing + ": " + av_error_text(err));
}

const char* muxer_for(const std::string& path) {
  const std::string ext = media_detail::lower_extension(path);
  if (ext == ".mp4" || ext == ".m4v") return "mp4";
  if (ext == ".mov") return "mov";
  if (ext == ".mkv") return "matroska";
  fail_mux("unsupported_format", path, "FFmpeg writes .mp4, .m4v, .mov or .mkv here");
}

// [T, 3, H, W] in [0, 1], even H and W.
at::Tensor muxable_frames(const at::Tensor& frames, const std::string& path) {
  at::Tensor f = frames.detach().to(at::kCPU, at::kFloat);
  if (f.dim() == 5 && f.size(0) == 1) f = f[0];
  if (f.dim() != 4 || f.size(1) != 3 || f.size(0) == 0 || f.size(2) == 0 || f.size(3) == 0)
    fail_mux("bad_shape", path, "expected frames [T, 3, H, W] or [1, T, 3, H, W], got " + c10::str(frames.sizes()));
  if (f.size(2) % 2 || f.size(3) % 2)
    fail_mux("bad_shape", path, "4:2:0 video needs an even width and height, got " + c10::str(frames.sizes()));
  return at::nan_to_num(f, 0.0).clamp(0.0, 1.0);
}

// [C, T] float in [-1, 1].
at::Tensor muxable_audio(const AudioData& audio, const std::string& path) {
  if (!audio.samples.defined()) fail_mux("bad_shape", path, "the audio has no samples tensor");
  at::Tensor a = audio.samples.detach().to(at::kCPU, at::kFloat);
  if (a.dim() == 3 && a.size(0) == 1) a = a[0];
  if (a.dim() == 1) a = a.unsqueeze(0);
  // FFmpeg's AAC encoder has channel configurations for 1 to 6 and 8 channels.
  if (a.dim() != 2 || a.size(0) < 1 || a.size(0) > 8 || a.size(0) == 7) {
    fail_mux("bad_shape", path,
             "expected audio [C, T] of 1 to 6 or 8 channels (AAC), got " + c10::str(audio.samples.sizes()));
  }
  return at::nan_to_num(a, 0.0).clamp(-1.0, 1.0).contiguous();
}

struct EncodedStream {
  AvCodec encoder;
  AVStream* stream = nullptr;
};

AVStream* add_stream(AVFormatContext* out, AVCodecContext* encoder, const std::string& path) {
  AVStream* stream = avformat_new_stream(out, nullptr);
  if (!stream) fail_mux("encode_failed", path, "cannot add a stream");
  check_av(avcodec_parameters_from_context(stream->codecpar, encoder), path, "stream parameters");
  stream->time_base = encoder->time_base;
  return stream;
}

EncodedStream open_video_encoder(AVFormatContext* out, const at::Tensor& frames, double fps, const std::string& path,
                                 VideoWriteResult* result) {
  const AVCodec* codec =
      result->format == VideoWriteFormat::Mp4H264 ? avcodec_find_encoder_by_name("libx264") : nullptr;
  if (!codec) {
    codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (result->format == VideoWriteFormat::Mp4H264) {
      result->fallback = true;
      result->note = "no H.264 encoder is available: wrote MPEG-4 Part 2 (mp4v) instead";
    }
    result->format = VideoWriteFormat::Mp4Mpeg4;
  }
  if (!codec) fail_mux("encode_failed", path, "FFmpeg has neither an H.264 nor an MPEG-4 encoder");
  EncodedStream s{AvCodec(avcodec_alloc_context3(codec))};
  if (!s.encoder) fail_mux("encode_failed", path, "cannot allocate the video encoder");
  AVCodecContext* e = s.encoder.get();
  e->width = static_cast<int>(frames.size(3));
  e->height = static_cast<int>(frames.size(2));
  e->pix_fmt = AV_PIX_FMT_YUV420P;
  e->framerate = av_d2q(fps, 65535);  // MPEG-4 Part 2 time bases stop at 16 bits
  e->time_base = av_inv_q(e->framerate);
  // OpenCV's RGB -> I420 is BT.601 in limited range, which readers assume for untagged SD video too.
  e->color_range = AVCOL_RANGE_MPEG;
  e->colorspace = AVCOL_SPC_SMPTE170M;
  if (result->format == VideoWriteFormat::Mp4Mpeg4) {
    e->flags |= AV_CODEC_FLAG_QSCALE;
    e->global_quality = FF_QP2LAMBDA * 2;
  } else {
    av_opt_set(e->priv_data, "crf", "18", 0);
  }
  if (out->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  check_av(avcodec_open2(e, codec, nullptr), path, std::string("opening the ") + codec->name + " encoder");
  s.stream = add_stream(out, e, path);
  s.stream->avg_frame_rate = e->framerate;
  return s;
}

bool sample_rate_supported(const AVCodec* codec, int rate) {
  if (!codec->supported_samplerates) return true;
  for (const int* r = codec->supported_samplerates; *r; ++r)
    if (*r == rate) return true;
  return false;
}

EncodedStream open_audio_encoder(AVFormatContext* out, int channels, int64_t sample_rate, const std::string& path) {
  const AVCodec* codec = avcodec_find_encoder_by_name("aac");
  if (!codec) fail_mux("encode_failed", path, "FFmpeg has no AAC encoder");
  if (sample_rate <= 0 || sample_rate > 96000 || !sample_rate_supported(codec, static_cast<int>(sample_rate))) {
    fail_mux("bad_sample_rate", path,
             "AAC cannot hold " + std::to_string(sample_rate) +
                 " Hz (it takes 96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, "
                 "8000 or 7350)");
  }
  EncodedStream s{AvCodec(avcodec_alloc_context3(codec))};
  if (!s.encoder) fail_mux("encode_failed", path, "cannot allocate the audio encoder");
  AVCodecContext* e = s.encoder.get();
  av_channel_layout_default(&e->ch_layout, channels);
  e->sample_rate = static_cast<int>(sample_rate);
  e->sample_fmt = AV_SAMPLE_FMT_FLTP;
  e->bit_rate = 96000 * channels;
  e->time_base = AVRational{1, e->sample_rate};
  if (out->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  check_av(avcodec_open2(e, codec, nullptr), path,
           "opening the AAC encoder for " + std::to_string(channels) + " channels");
  s.stream = add_stream(out, e, path);
  return s;
}

// Sends one frame (nullptr: the end) and writes every packet the encoder has ready.
void encode_into(AVFormatContext* out, EncodedStream& s, const AVFrame* frame, const std::string& path) {
  check_av(avcodec_send_frame(s.encoder.get(), frame), path, "encoding");
  AvPacket packet = new_packet();
  while (true) {
    const int err = avcodec_receive_packet(s.encoder.get(), packet.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    check_av(err, path, "encoding");
    av_packet_rescale_ts(packet.get(), s.encoder->time_base, s.stream->time_base);
    packet->stream_index = s.stream->index;
    check_av(av_interleaved_write_frame(out, packet.get()), path, "writing a packet");
  }
}

AvFrame picture_frame(const AVCodecContext* e, const std::string& path) {
  AvFrame f = new_frame();
  f->format = e->pix_fmt;
  f->width = e->width;
  f->height = e->height;
  check_av(av_frame_get_buffer(f.get(), 0), path, "video frame buffer");
  return f;
}

// Frame t as YUV 4:2:0: [3, H, W] in [0, 1] -> 8-bit RGB -> I420 planes.
void fill_video_frame(AVFrame* f, const at::Tensor& rgb) {
  const int h = f->height, w = f->width;
  at::Tensor hwc = rgb.mul(255.0).round().to(at::kByte).permute({1, 2, 0}).contiguous();
  cv::Mat rgb_mat(h, w, CV_8UC3, hwc.data_ptr<uint8_t>()), i420;
  cv::cvtColor(rgb_mat, i420, cv::COLOR_RGB2YUV_I420);
  const uint8_t* src = i420.ptr<uint8_t>();
  for (int plane = 0; plane < 3; ++plane) {
    const int pw = plane ? w / 2 : w, ph = plane ? h / 2 : h;
    for (int y = 0; y < ph; ++y) std::memcpy(f->data[plane] + y * f->linesize[plane], src + y * pw, pw);
    src += pw * ph;
  }
}

AvFrame audio_frame(const AVCodecContext* e, const at::Tensor& audio, int64_t offset, int64_t count,
                    const std::string& path) {
  AvFrame f = new_frame();
  f->format = e->sample_fmt;
  f->sample_rate = e->sample_rate;
  f->nb_samples = static_cast<int>(count);
  check_av(av_channel_layout_copy(&f->ch_layout, &e->ch_layout), path, "channel layout");
  check_av(av_frame_get_buffer(f.get(), 0), path, "audio frame buffer");
  for (int64_t c = 0; c < audio.size(0); ++c)
    std::memcpy(f->data[c], audio[c].data_ptr<float>() + offset, sizeof(float) * count);
  f->pts = offset;
  return f;
}

// Frames and audio chunks in time order, so the muxer's interleaving buffer stays small; `audio` is null
// for a video without a sound track.
void encode_streams(AVFormatContext* out, EncodedStream& video, EncodedStream* audio, const at::Tensor& frames,
                    const at::Tensor& samples, const std::string& path) {
  const double frame_seconds = av_q2d(video.encoder->time_base);
  const int64_t chunk = audio && audio->encoder->frame_size > 0 ? audio->encoder->frame_size : 1024;
  const int64_t total = audio ? samples.size(1) : 0, rate = audio ? audio->encoder->sample_rate : 1;
  int64_t t = 0, offset = 0;
  while (t < frames.size(0) || offset < total) {
    const bool video_next = offset >= total || (t < frames.size(0) && t * frame_seconds <= double(offset) / rate);
    if (video_next) {
      AvFrame f = picture_frame(video.encoder.get(), path);
      fill_video_frame(f.get(), frames[t]);
      f->pts = t++;
      encode_into(out, video, f.get(), path);
    } else {
      const int64_t n = std::min(chunk, total - offset);
      AvFrame f = audio_frame(audio->encoder.get(), samples, offset, n, path);
      offset += n;
      encode_into(out, *audio, f.get(), path);
    }
  }
  encode_into(out, video, nullptr, path);
  if (audio) encode_into(out, *audio, nullptr, path);
}

}  // namespace

VideoWriteResult mux_video(const std::string& path, const at::Tensor& frames_in, double fps, const AudioData* audio,
                           VideoWriteFormat video_format) {
  if (video_format != VideoWriteFormat::Mp4H264 && video_format != VideoWriteFormat::Mp4Mpeg4)
    fail_mux("unsupported_format", path, "FFmpeg writes video as H.264 or MPEG-4 Part 2");
  const at::Tensor frames = muxable_frames(frames_in, path);
  if (!(fps > 0.0) || !std::isfinite(fps) || fps > 1000.0)
    fail_mux("bad_fps", path, "frame rate " + std::to_string(fps) + " is not in (0, 1000]");
  const at::Tensor samples = audio ? muxable_audio(*audio, path) : at::Tensor();
  const char* muxer = muxer_for(path);
  silence_ffmpeg_log();
  TemporaryFile temp(temporary_path_beside(path));
  AVFormatContext* raw = nullptr;
  check_av(avformat_alloc_output_context2(&raw, nullptr, muxer, temp.path.c_str()), path, "the container");
  AvOutput out(raw);
  VideoWriteResult result;
  result.path = path;
  result.format = video_format;
  EncodedStream video = open_video_encoder(out.get(), frames, fps, path, &result);
  std::optional<EncodedStream> sound;
  if (audio) sound = open_audio_encoder(out.get(), static_cast<int>(samples.size(0)), audio->sample_rate, path);
  const int opened = avio_open(&out->pb, temp.path.c_str(), AVIO_FLAG_WRITE);
  if (opened < 0) fail_mux("write_failed", path, "cannot create '" + temp.path + "': " + av_error_text(opened));
  // The index (moov) before the media data, so that a browser's <video> starts playing before the file is whole.
  AvOptions header;
  if (std::string(muxer) != "matroska") header.set("movflags", "+faststart");
  check_av(avformat_write_header(out.get(), &header.dict), path, "the container header");
  encode_streams(out.get(), video, sound ? &*sound : nullptr, frames, samples, path);
  check_av(av_write_trailer(out.get()), path, "the container index");
  const int closed = avio_closep(&out->pb);
  if (closed < 0) fail_mux("write_failed", path, av_error_text(closed));
  move_into_place(temp.path, path);
  temp.published = true;
  return result;
}

VideoWriteResult write_video_with_audio(const std::string& path, const at::Tensor& frames, double fps,
                                        const AudioData& audio, VideoWriteFormat video_format) {
  return mux_video(path, frames, fps, &audio, video_format);
}

}  // namespace a2a
