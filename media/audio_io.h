#pragma once
// Reading and writing audio (WAV, FLAC, OGG/Vorbis) through libsndfile.
//
// Samples are float tensors [C, T] in [-1, 1] (libsndfile scales integer PCM by 1/32768 for 16-bit).
// Writing clips to [-1, 1] for integer and compressed encodings; float WAV keeps the values as given.
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>

namespace a2a {

struct AudioData {
  at::Tensor samples;  // [C, T] float
  int64_t sample_rate = 0;
};

enum class AudioContainer { Wav, Flac, Ogg };
enum class AudioEncoding {
  Pcm16,    // WAV, FLAC
  Pcm24,    // WAV, FLAC
  Float32,  // WAV only
  Vorbis,   // OGG only
  Default   // per container: WAV PCM16, FLAC PCM16, OGG Vorbis
};

bool audio_container_for_path(const std::string& path, AudioContainer* container);

// Throws a2a::Error (Input) naming the file for a missing, empty, truncated, corrupt or unsupported file.
AudioData read_audio(const std::string& path);

struct AudioWriteOptions {
  AudioEncoding encoding = AudioEncoding::Default;
  double vorbis_quality = 0.6;  // 0..1
};

// samples: [C, T] or [1, C, T] (or [T] mono).
void write_audio(const std::string& path, const at::Tensor& samples, int64_t sample_rate,
                 const AudioWriteOptions& options = {});

}  // namespace a2a
