#pragma once
// pytorchvideo's ConstantClipsPerVideoSampler as ImageBind reads it out (imagebind/data.py
// get_clip_timepoints): K clips of a fixed duration whose starts split max(duration - clip, 0) into
// K - 1 equal steps. The reference computes in exact fractions (Fraction of the float duration) and
// truncates `start * rate` to an integer; the sample indices here are computed exactly the same way.
#include <cstdint>
#include <utility>
#include <vector>

namespace a2a {

struct ConstantClipsSampling {
  double clip_duration = 2.0;  // seconds
  int64_t clips_per_video = 3;
};

// Clip start and end times in seconds, float(Fraction) as the reference hands them to a decoder:
// start_k = max(duration - clip, 0) * k / max(K - 1, 1), end_k = start_k + clip. Always K clips (a
// signal shorter than one clip gives K clips starting at 0).
std::vector<std::pair<double, double>> constant_clip_timepoints(double duration, const ConstantClipsSampling& sampling);

// Sample ranges [begin, end) of each clip of a signal of num_samples at sample_rate:
// int(start_k * rate), int(end_k * rate) in exact arithmetic, with duration = num_samples / rate. `end`
// may pass num_samples (the clip is then cut short by the slice, as in the reference).
std::vector<std::pair<int64_t, int64_t>> constant_clip_sample_ranges(int64_t num_samples, int64_t sample_rate,
                                                                     const ConstantClipsSampling& sampling);

}  // namespace a2a
