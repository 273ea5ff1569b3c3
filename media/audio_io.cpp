#include "media/audio_io.h"

#include <ATen/ATen.h>
#include <sndfile.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "media/media_util.h"

namespace a2a {

bool audio_container_for_path(const std::string& path, AudioContainer* container) {
  const std::string ext = media_detail::lower_extension(path);
  AudioContainer c;
  if (ext == ".wav" || ext == ".wave")
    c = AudioContainer::Wav;
  else if (ext == ".flac")
    c = AudioContainer::Flac;
  else if (ext == ".ogg" || ext == ".oga")
    c = AudioContainer::Ogg;
  else
    return false;
  if (container) *container = c;
  return true;
}

namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

[[noreturn]] void fail_audio(const std::string& code, const std::string& path, const std::string& what) {
  throw_input_error(code, "audio file '" + path + "': " + what);
}

std::string log_info(SNDFILE* file) {
  std::string log(8192, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  log.resize(std::strlen(log.c_str()));
  return log;
}

// libsndfile reads a WAV whose data chunk runs past the end of the file and notes
// "data : N (should be M)" in its log; the decoders' own errors are logged as "ERROR : ...".
std::string find_log_problem(const std::string& log) {
  std::istringstream lines(log);
  std::string line, problem;
  while (std::getline(lines, line)) {
    if (line.rfind("data :", 0) == 0 && line.find("should be") != std::string::npos) return "truncated";
    if (line.rfind("ERROR", 0) == 0 && problem.empty()) problem = line;
  }
  return problem;
}

}  // namespace

AudioData read_audio(const std::string& path) {
  media_detail::check_readable_file(path, "audio file");
  SF_INFO info;
  std::memset(&info, 0, sizeof(info));
  SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    const int err = sf_error(nullptr);
    const std::string why = sf_strerror(nullptr);
    if (err == SF_ERR_UNRECOGNISED_FORMAT)
      fail_audio("unsupported_format", path, "not a WAV, FLAC or OGG file (" + why + ")");
    if (err == SF_ERR_UNSUPPORTED_ENCODING) fail_audio("unsupported_format", path, why);
    fail_audio("corrupt_file", path, "cannot be opened: " + why);
  }
  if (info.channels <= 0 || info.samplerate <= 0)
    fail_audio("corrupt_file", path, "header has no channels or sample rate");
  if (info.frames <= 0) fail_audio("empty_audio", path, "holds no samples");
  // 2^31 samples (8 GB as floats, over six hours of 48 kHz stereo) is more than any input we process. The header's
  // count is only a claim (a 5 KB FLAC can declare 2^30 frames), so memory grows with what actually decodes.
  constexpr int64_t kMaxSamples = int64_t{1} << 31;
  if (info.frames > kMaxSamples / info.channels) {
    fail_audio("corrupt_file", path,
               "header declares " + std::to_string(info.frames) + " frames of " + std::to_string(info.channels) +
                   " channels, over the limit of 2^31 samples");
  }
  constexpr sf_count_t kChunkFrames = sf_count_t{1} << 16;
  const size_t channels = static_cast<size_t>(info.channels);
  std::vector<float> interleaved;
  sf_count_t got = 0;
  while (got < info.frames) {
    const sf_count_t want = std::min(kChunkFrames, info.frames - got);
    interleaved.resize(static_cast<size_t>(got + want) * channels);
    const sf_count_t n = sf_readf_float(file.get(), interleaved.data() + static_cast<size_t>(got) * channels, want);
    if (n > 0) got += n;
    if (n < want) break;
  }
  interleaved.resize(static_cast<size_t>(got) * channels);
  const std::string problem = find_log_problem(log_info(file.get()));
  if (problem == "truncated") {
    fail_audio("truncated_file", path, "is truncated: the data chunk runs past the end of the file");
  }
  if (got < info.frames) {
    fail_audio("truncated_file", path,
               "is truncated or corrupt: header declares " + std::to_string(info.frames) + " frames, only " +
                   std::to_string(got) + " could be decoded" + (problem.empty() ? "" : " (" + problem + ")"));
  }
  if (!problem.empty()) fail_audio("corrupt_file", path, "is corrupt: " + problem);

  auto t = at::from_blob(interleaved.data(), {info.frames, info.channels}, at::kFloat);
  AudioData out;
  out.samples = t.t().clone(at::MemoryFormat::Contiguous);  // a copy: `interleaved` dies here
  out.sample_rate = info.samplerate;
  return out;
}

void write_audio(const std::string& path, const at::Tensor& samples, int64_t sample_rate,
                 const AudioWriteOptions& options) {
  AudioContainer container;
  if (!audio_container_for_path(path, &container)) {
    throw_input_error("unsupported_format",
                      "cannot write audio '" + path + "': the extension is not .wav, .flac or .ogg");
  }
  at::Tensor ct = samples.detach().to(at::kCPU, at::kFloat);
  if (ct.dim() == 3 && ct.size(0) == 1) ct = ct[0];
  if (ct.dim() == 1) ct = ct.unsqueeze(0);
  if (ct.dim() != 2 || ct.size(0) == 0 || ct.size(1) == 0) {
    throw_input_error("bad_shape", "cannot write audio '" + path + "': expected [C, T] or [1, C, T] samples, got " +
                                       std::string(c10::str(samples.sizes())));
  }
  if (ct.size(0) > 1024) {
    throw_input_error("bad_shape", "cannot write audio '" + path + "': " + std::to_string(ct.size(0)) +
                                       " channels (is the tensor [T, C] instead of [C, T]?)");
  }
  if (sample_rate <= 0 || sample_rate > 1000000) {
    throw_input_error("bad_sample_rate", "cannot write audio '" + path + "': sample rate " +
                                             std::to_string(sample_rate) + " is not valid");
  }
  AudioEncoding enc = options.encoding;
  int major = 0;
  switch (container) {
    case AudioContainer::Wav:
      major = SF_FORMAT_WAV;
      if (enc == AudioEncoding::Default) enc = AudioEncoding::Pcm16;
      break;
    case AudioContainer::Flac:
      major = SF_FORMAT_FLAC;
      if (enc == AudioEncoding::Default) enc = AudioEncoding::Pcm16;
      break;
    case AudioContainer::Ogg:
      major = SF_FORMAT_OGG;
      if (enc == AudioEncoding::Default) enc = AudioEncoding::Vorbis;
      break;
  }
  int subtype = 0;
  switch (enc) {
    case AudioEncoding::Pcm16: subtype = SF_FORMAT_PCM_16; break;
    case AudioEncoding::Pcm24: subtype = SF_FORMAT_PCM_24; break;
    case AudioEncoding::Float32: subtype = SF_FORMAT_FLOAT; break;
    case AudioEncoding::Vorbis: subtype = SF_FORMAT_VORBIS; break;
    case AudioEncoding::Default: break;
  }
  SF_INFO info;
  std::memset(&info, 0, sizeof(info));
  info.samplerate = static_cast<int>(sample_rate);
  info.channels = static_cast<int>(ct.size(0));
  info.format = major | subtype;
  if (!sf_format_check(&info)) {
    throw_input_error("unsupported_format", "cannot write audio '" + path +
                                                "': this container cannot hold the "
                                                "requested encoding (float is WAV only, Vorbis is OGG only)");
  }
  if (enc != AudioEncoding::Float32) ct = ct.clamp(-1.0, 1.0);
  auto interleaved = at::nan_to_num(ct, 0.0).t().contiguous();
  SndfilePtr file(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!file) throw_input_error("write_failed", "cannot create audio '" + path + "': " + sf_strerror(nullptr));
  if (enc == AudioEncoding::Vorbis) {
    double quality = options.vorbis_quality;
    sf_command(file.get(), SFC_SET_VBR_ENCODING_QUALITY, &quality, sizeof(quality));
  }
  // Integer encodings: a sample at full scale saturates instead of wrapping around.
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t frames = interleaved.size(0);
  const sf_count_t written = sf_writef_float(file.get(), interleaved.data_ptr<float>(), frames);
  if (written != frames) {
    throw_input_error("write_failed", "cannot write audio '" + path + "': " + sf_strerror(file.get()));
  }
  file.reset();
}

}  // namespace a2a
