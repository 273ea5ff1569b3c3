#include "media/image_preprocess.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace a2a {

namespace {

// The filters and weight arithmetic follow torch's float32 code path exactly (types included), so that
// values landing near x.5 round to the same uint8 as the reference. LibTorch's CPU kernels run as
// their AVX2 build, where the compiler fuses a * b + c into one FMA; the same multiply-adds are fused
// explicitly here (std::fma), which reproduces the reference's rounding bit for bit.
float bilinear_filter(float x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

float bicubic_filter(float x) {
  const float a = -0.5f;  // Keys' kernel, as torch and PIL use
  x = std::abs(x);
  if (x < 1.0) return std::fma(std::fma(a + 2, x, -(a + 3)) * x, x, 1.0f);              // ((a+2)x - (a+3)) x x + 1
  if (x < 2.0) return std::fma(std::fma(std::fma(a, x, -5 * a), x, 8 * a), x, -4 * a);  // ((ax - 5a) x + 8a) x - 4a
  return 0.0;
}

struct AxisWeights {
  int64_t taps = 0;  // weights per output position (zero-padded)
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<float> weights;  // out_size * taps
};

AxisWeights axis_weights(int64_t in_size, int64_t out_size, ResizeFilter filter) {
  const int interp_size = filter == ResizeFilter::Bicubic ? 4 : 2;
  float (*filter_fn)(float) = filter == ResizeFilter::Bicubic ? bicubic_filter : bilinear_filter;
  const float scale = static_cast<float>(in_size) / out_size;
  const float support = (scale >= 1.0) ? (interp_size * 0.5) * scale : interp_size * 0.5;
  AxisWeights aw;
  aw.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  aw.first.resize(out_size);
  aw.count.resize(out_size);
  aw.weights.assign(out_size * aw.taps, 0.0f);
  for (int64_t i = 0; i < out_size; ++i) {
    const float center = scale * (i + 0.5);
    const float invscale = (scale >= 1.0) ? 1.0 / scale : 1.0;
    const int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5), int64_t(0));
    int64_t xsize = std::min(static_cast<int64_t>(center + support + 0.5), in_size) - xmin;
    xsize = std::clamp(xsize, int64_t(0), aw.taps);
    float* w = &aw.weights[i * aw.taps];
    float total = 0.0f;
    for (int64_t j = 0; j < xsize; ++j) {
      w[j] = filter_fn((j + xmin - center + 0.5) * invscale);
      total += w[j];
    }
    if (total != 0.0f)
      for (int64_t j = 0; j < xsize; ++j) w[j] /= total;
    aw.first[i] = xmin;
    aw.count[i] = xsize;
  }
  return aw;
}

// [planes, H, W] -> [planes, H, out_w]
at::Tensor resample_width(const at::Tensor& in, int64_t out_w, ResizeFilter filter) {
  const int64_t planes = in.size(0), h = in.size(1), w = in.size(2);
  const AxisWeights aw = axis_weights(w, out_w, filter);
  auto out = at::empty({planes, h, out_w}, in.options());
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, planes * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* s = src + row * w;
      float* d = dst + row * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const float* wt = &aw.weights[x * aw.taps];
        const float* p = s + aw.first[x];
        float acc = p[0] * wt[0];
        for (int64_t j = 1; j < aw.count[x]; ++j) acc = std::fma(p[j], wt[j], acc);
        d[x] = acc;
      }
    }
  });
  return out;
}

// [planes, H, W] -> [planes, out_h, W]
at::Tensor resample_height(const at::Tensor& in, int64_t out_h, ResizeFilter filter) {
  const int64_t planes = in.size(0), h = in.size(1), w = in.size(2);
  const AxisWeights aw = axis_weights(h, out_h, filter);
  auto out = at::empty({planes, out_h, w}, in.options());
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, planes * out_h, 4, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t plane = idx / out_h, y = idx % out_h;
      const float* wt = &aw.weights[y * aw.taps];
      const float* s = src + (plane * h + aw.first[y]) * w;
      float* d = dst + (plane * out_h + y) * w;
      for (int64_t x = 0; x < w; ++x) d[x] = s[x] * wt[0];
      for (int64_t j = 1; j < aw.count[y]; ++j) {
        const float* r = s + j * w;
        for (int64_t x = 0; x < w; ++x) d[x] = std::fma(r[x], wt[j], d[x]);
      }
    }
  });
  return out;
}

// Python's round(): half to even.
int64_t python_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

}  // namespace

at::Tensor resize_antialiased(const at::Tensor& images, int64_t out_h, int64_t out_w, ResizeFilter filter) {
  if (images.dim() < 2) {
    throw_input_error("bad_shape", "resize expects [..., H, W], got " + std::string(c10::str(images.sizes())));
  }
  if (out_h <= 0 || out_w <= 0) {
    throw_input_error("bad_size",
                      "resize to " + std::to_string(out_h) + "x" + std::to_string(out_w) + " is not a positive size");
  }
  const int64_t h = images.size(-2), w = images.size(-1);
  if (h == 0 || w == 0) throw_input_error("bad_shape", "cannot resize an empty image");
  auto lead = images.sizes().slice(0, images.dim() - 2).vec();
  at::Tensor planes = images.detach().to(at::kCPU, at::kFloat).reshape({-1, h, w}).contiguous();
  if (out_w != w) planes = resample_width(planes, out_w, filter);
  if (out_h != h) planes = resample_height(planes, out_h, filter);
  lead.push_back(out_h);
  lead.push_back(out_w);
  return planes.reshape(lead).to(images.device());
}

void shorter_side_resize_shape(int64_t h, int64_t w, int64_t size, int64_t* out_h, int64_t* out_w) {
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  const int64_t new_long = static_cast<int64_t>(static_cast<double>(size) * longer / shorter);
  if (w <= h) {
    *out_w = size;
    *out_h = new_long;
  } else {
    *out_h = size;
    *out_w = new_long;
  }
}

CropOffsets center_crop_offsets(int64_t h, int64_t w, int64_t crop_h, int64_t crop_w) {
  return {python_round((h - crop_h) / 2.0), python_round((w - crop_w) / 2.0)};
}

at::Tensor center_crop(const at::Tensor& images, int64_t crop_h, int64_t crop_w) {
  if (images.dim() < 2) {
    throw_input_error("bad_shape", "center crop expects [..., H, W], got " + std::string(c10::str(images.sizes())));
  }
  at::Tensor x = images;
  int64_t h = x.size(-2), w = x.size(-1);
  if (crop_h > h || crop_w > w) {
    // torchvision pads (left, top, right, bottom) = ((cw - w) // 2, (ch - h) // 2, (cw - w + 1) // 2, (ch - h + 1) //
    // 2)
    const int64_t pad_w = std::max<int64_t>(crop_w - w, 0), pad_h = std::max<int64_t>(crop_h - h, 0);
    x = at::constant_pad_nd(x, {pad_w / 2, (pad_w + 1) / 2, pad_h / 2, (pad_h + 1) / 2}, 0.0);
    h = x.size(-2);
    w = x.size(-1);
    if (h == crop_h && w == crop_w) return x;
  }
  const CropOffsets at = center_crop_offsets(h, w, crop_h, crop_w);
  return x.narrow(-2, at.top, crop_h).narrow(-1, at.left, crop_w);
}

at::Tensor normalize_channels(const at::Tensor& images, const std::vector<double>& mean,
                              const std::vector<double>& std) {
  if (images.dim() < 3) {
    throw_input_error("bad_shape", "normalize expects [..., C, H, W], got " + std::string(c10::str(images.sizes())));
  }
  const int64_t c = images.size(-3);
  if (static_cast<int64_t>(mean.size()) != c || static_cast<int64_t>(std.size()) != c) {
    throw_input_error("bad_option", "normalize needs one mean and one std per channel (" + std::to_string(c) +
                                        "), got " + std::to_string(mean.size()) + " and " + std::to_string(std.size()));
  }
  for (double s : std)
    if (s == 0.0) throw_input_error("bad_option", "normalize: std must not be zero");
  auto opts = images.options().dtype(at::kFloat);
  std::vector<float> mean_f(mean.begin(), mean.end()), std_f(std.begin(), std.end());
  auto m = at::tensor(mean_f, opts).view({c, 1, 1});
  auto s = at::tensor(std_f, opts).view({c, 1, 1});
  return images.to(at::kFloat).sub(m).div(s);
}

at::Tensor preprocess_image(const at::Tensor& images, const ImagePreprocessOptions& options) {
  at::Tensor x = images;
  if (x.dim() == 3) x = x.unsqueeze(0);
  if (x.dim() != 4 || x.size(1) != 3) {
    throw_input_error("bad_shape", "image preprocessing expects [B, 3, H, W] or [3, H, W], got " +
                                       std::string(c10::str(images.sizes())));
  }
  x = x.to(at::kFloat);
  if (options.quantize_uint8)
    x = x.clamp(0.0, 1.0).mul(255.0f).round();
  else
    x = x.mul(255.0f);
  if (options.resize > 0) {
    int64_t out_h, out_w;
    shorter_side_resize_shape(x.size(2), x.size(3), options.resize, &out_h, &out_w);
    x = resize_antialiased(x, out_h, out_w, options.filter);
    // torchvision rounds half to even (torch.round) and clamps back to uint8.
    if (options.quantize_uint8) x = x.round().clamp(0.0, 255.0);
  }
  if (options.crop > 0) x = center_crop(x, options.crop, options.crop);
  x = x.div(255.0f);
  return normalize_channels(x, options.mean, options.std).contiguous();
}

}  // namespace a2a
