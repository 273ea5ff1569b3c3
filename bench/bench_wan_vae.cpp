// AutoencoderKLWan at Wan 2.1's size (base 96, z 16) decoding 2, 4 and 8 latent frames of 16 x 16 (5, 13 and 29
// video frames of 128 x 128): seconds per video frame and the peak resident memory of each decode, each in a
// child process of its own so that one case's peak cannot hide another's. With the causal frame cache the peak
// grows with the output video (3 x F x 128 x 128 floats), not with the decoder's activations of every frame.
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "bench/bench.h"
#include "diffusion/autoencoder_kl_wan.h"
#include "nn/seeded_init.h"

namespace {

// Decodes `latent_frames` frames (frame 0, then frames_per_chunk at a time, 0 = all) in a child; returns its peak
// resident set (MiB) and writes the seconds.
double wan_vae_decode_peak_mib(int64_t latent_frames, int64_t frames_per_chunk, double* seconds) {
  int pipe_fd[2];
  if (pipe(pipe_fd) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    close(pipe_fd[0]);
    torch::NoGradGuard no_grad;
    a2a::AutoencoderKLWan vae(a2a::AutoencoderKLWanOptions{});
    a2a::initialize_seeded_weights(*vae, 0);
    vae->eval();
    const auto z = torch::randn({1, 16, latent_frames, 16, 16});
    const auto start = std::chrono::steady_clock::now();
    vae->decode(z, frames_per_chunk);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (write(pipe_fd[1], &elapsed, sizeof(elapsed)) != sizeof(elapsed)) _exit(1);
    _exit(0);
  }
  close(pipe_fd[1]);
  int status = 0;
  struct rusage usage {};
  wait4(child, &status, 0, &usage);
  if (read(pipe_fd[0], seconds, sizeof(*seconds)) != sizeof(*seconds)) *seconds = -1;
  close(pipe_fd[0]);
  return usage.ru_maxrss / 1024.0;  // KiB on Linux
}

void bench_wan_vae() {
  std::printf("wan vae decode (Wan 2.1 size), 16x16 latents -> 128x128 frames, %d threads\n", at::get_num_threads());
  std::printf(
      "  chunked = one latent frame per decoder call (the reference); all at once = frame 0, then the rest in one "
      "call (same output: the [wan_vae] chunk test)\n");
  double base_chunked = 0, base_whole = 0;
  for (int64_t latent_frames : {2, 4, 8}) {
    double chunked_s = 0, whole_s = 0;
    const double chunked = wan_vae_decode_peak_mib(latent_frames, 1, &chunked_s);
    const double whole = wan_vae_decode_peak_mib(latent_frames, 0, &whole_s);
    if (latent_frames == 2) base_chunked = chunked, base_whole = whole;
    const int64_t frames = 1 + 4 * (latent_frames - 1);
    std::printf(
        "  %lld latent -> %2lld frames: chunked %.3f s/frame, peak %.0f MiB (%.2fx the 2-frame); all at once "
        "%.3f s/frame, peak %.0f MiB (%.2fx the 2-frame); all-at-once / chunked peak %.2fx\n",
        static_cast<long long>(latent_frames), static_cast<long long>(frames), chunked_s / frames, chunked,
        chunked / base_chunked, whole_s / frames, whole, whole / base_whole, whole / chunked);
  }
}

}  // namespace

A2A_BENCH("wan_vae", bench_wan_vae);
