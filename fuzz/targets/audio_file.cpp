// Audio files through read_audio: libsndfile behind our length bounds and chunked decoding.
#include <ATen/ATen.h>

#include <cstring>

#include "fuzz/fuzz_target.h"
#include "media/audio_io.h"

namespace a2a::fuzz {

namespace {

const std::vector<std::string> kAudioExtensions = {".wav", ".flac", ".ogg"};

// Input: one byte choosing the extension, then the file.
void audio_file(const Bytes& input) {
  const std::string path = scratch_media_file("audio", kAudioExtensions, input);
  if (path.empty()) return;
  AudioData audio = read_audio(path);
  fuzz_check(audio.samples.dim() == 2 && audio.samples.size(0) > 0, "decoded audio is not [C, T]");
  fuzz_check(audio.sample_rate > 0, "decoded audio has no sample rate");
  fuzz_check(int64_t(audio.samples.numel()) * 4 <= int64_t(input.size()) * 64 + (int64_t(1) << 20),
             "far more samples than the file could encode");
}

std::vector<std::pair<std::string, Bytes>> audio_file_seeds() {
  std::vector<std::pair<std::string, Bytes>> seeds;
  const at::Tensor wave = at::sin(at::linspace(0, 60, 2 * 400)).reshape({2, 400}) * 0.5;
  for (int i = 0; i < 3; ++i) {
    const std::string path = scratch_folder() + "/seed" + kAudioExtensions[i];
    write_audio(path, wave, 8000);
    seeds.push_back({std::string("valid") + kAudioExtensions[i], media_seed(i, path)});
  }
  const std::string f32 = scratch_folder() + "/seed_f32.wav";
  write_audio(f32, wave.slice(0, 0, 1), 16000, {AudioEncoding::Float32});
  seeds.push_back({"float32.wav", media_seed(0, f32)});
  // A WAV whose data chunk claims 2^31 frames of 16-bit stereo.
  Bytes claims = read_bytes(scratch_folder() + "/seed.wav");
  const auto data = claims.find("data");
  if (data != Bytes::npos) {
    const uint32_t huge = 0xFFFFFFF0u;
    claims.replace(data + 4, 4, reinterpret_cast<const char*>(&huge), 4);
  }
  seeds.push_back({"huge_data_chunk.wav", Bytes(1, '\0') + claims});
  return seeds;
}

}  // namespace

A2A_FUZZ_TARGET("audio_file",
                "audio files (WAV, FLAC, OGG/Vorbis) through read_audio: claimed lengths and channel "
                "counts against the sample bound, chunked decoding, error mapping",
                audio_file, audio_file_seeds);

}  // namespace a2a::fuzz
