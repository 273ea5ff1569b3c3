#include "media/clip_sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace a2a {

namespace {

void check_sampling(const ConstantClipsSampling& sampling) {
  if (sampling.clips_per_video <= 0 || !(sampling.clip_duration > 0.0) || !std::isfinite(sampling.clip_duration)) {
    throw_input_error("bad_option", "clip sampling needs a positive number of clips and a positive, finite duration");
  }
}

// x = mantissa * 2^exponent exactly, for finite x >= 0.
struct Dyadic {
  __int128 mantissa = 0;
  int exponent = 0;
};

Dyadic to_dyadic(double x) {
  if (x == 0.0) return {};
  int e = 0;
  const double f = std::frexp(x, &e);
  return {static_cast<__int128>(std::ldexp(f, 53)), e - 53};
}

int bit_length(__int128 v) {
  int bits = 0;
  for (; v > 0; v >>= 1) ++bits;
  return bits;
}

// floor((a * k / d + c) * rate) for a, c >= 0 as Python's int(Fraction) computes it. Falls back to
// long double arithmetic only for magnitudes no audio signal reaches.
int64_t floor_clip_time(double a, int64_t k, int64_t d, double c, int64_t rate) {
  const Dyadic da = to_dyadic(a), dc = to_dyadic(c);
  const int e = std::min({da.exponent, dc.exponent, 0});
  const int shift_a = da.exponent - e, shift_c = dc.exponent - e;
  const int budget = 120 - bit_length(rate) - bit_length(std::max<int64_t>(k, d));
  if (-e > 100 || bit_length(da.mantissa) + shift_a > budget || bit_length(dc.mantissa) + shift_c > budget) {
    return static_cast<int64_t>(std::floor((static_cast<long double>(a) * k / d + c) * rate));
  }
  const __int128 numerator = ((da.mantissa << shift_a) * k + (dc.mantissa << shift_c) * d) * rate;
  const __int128 denominator = static_cast<__int128>(d) << (-e);
  return static_cast<int64_t>(numerator / denominator);
}

}  // namespace

std::vector<std::pair<double, double>> constant_clip_timepoints(double duration,
                                                                const ConstantClipsSampling& sampling) {
  check_sampling(sampling);
  const double max_start = std::max(duration - sampling.clip_duration, 0.0);
  const int64_t steps = std::max<int64_t>(sampling.clips_per_video - 1, 1);
  std::vector<std::pair<double, double>> clips;
  for (int64_t k = 0; k < sampling.clips_per_video; ++k) {
    // One rounding of the exact fraction (long double holds max_start * k exactly).
    const long double start = static_cast<long double>(max_start) * k / steps;
    clips.emplace_back(static_cast<double>(start), static_cast<double>(start + sampling.clip_duration));
  }
  return clips;
}

std::vector<std::pair<int64_t, int64_t>> constant_clip_sample_ranges(int64_t num_samples, int64_t sample_rate,
                                                                     const ConstantClipsSampling& sampling) {
  check_sampling(sampling);
  if (sample_rate <= 0 || num_samples < 0) {
    throw_input_error("bad_option", "clip sampling needs a positive sample rate, got " + std::to_string(sample_rate));
  }
  const double duration = static_cast<double>(num_samples) / static_cast<double>(sample_rate);
  const double max_start = std::max(duration - sampling.clip_duration, 0.0);
  const int64_t steps = std::max<int64_t>(sampling.clips_per_video - 1, 1);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t k = 0; k < sampling.clips_per_video; ++k) {
    ranges.emplace_back(floor_clip_time(max_start, k, steps, 0.0, sample_rate),
                        floor_clip_time(max_start, k, steps, sampling.clip_duration, sample_rate));
  }
  return ranges;
}

}  // namespace a2a
