#pragma once
// Image preprocessing as torchvision does it for CLIP and ImageBind:
// Resize(shorter side, antialiased bicubic or bilinear) -> CenterCrop -> /255 -> Normalize(mean, std).
//
// The resize reproduces torch's separable antialiased kernels (_upsample_{bilinear,bicubic}2d_aa with
// align_corners=False, PIL's approach): when downscaling, the filter support widens by the scale factor
// and the weights of each output pixel are normalised to sum to one. Width is resampled first, then
// height, in float32, as torch does.
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace a2a {

enum class ResizeFilter { Bilinear, Bicubic };

// Antialiased resize of a float tensor [..., H, W] to [..., out_h, out_w]. Bicubic uses a = -0.5.
at::Tensor resize_antialiased(const at::Tensor& images, int64_t out_h, int64_t out_w, ResizeFilter filter);

// torchvision Resize(int): the shorter side becomes `size`, the longer int(size * long / short).
void shorter_side_resize_shape(int64_t h, int64_t w, int64_t size, int64_t* out_h, int64_t* out_w);

struct CropOffsets {
  int64_t top = 0;
  int64_t left = 0;
};
// torchvision CenterCrop: top = int(round((h - crop_h) / 2)), Python rounding (half to even).
CropOffsets center_crop_offsets(int64_t h, int64_t w, int64_t crop_h, int64_t crop_w);
// Crops [..., H, W]; an image smaller than the crop is first padded with zeros, as torchvision does.
at::Tensor center_crop(const at::Tensor& images, int64_t crop_h, int64_t crop_w);

// (x - mean[c]) / std[c] over the channel dimension (dim -3), in float32.
at::Tensor normalize_channels(const at::Tensor& images, const std::vector<double>& mean,
                              const std::vector<double>& std);

struct ImagePreprocessOptions {
  int64_t resize = 224;  // shorter side; 0 = no resize
  ResizeFilter filter = ResizeFilter::Bicubic;
  int64_t crop = 224;                                              // square center crop; 0 = no crop
  std::vector<double> mean = {0.48145466, 0.4578275, 0.40821073};  // CLIP's
  std::vector<double> std = {0.26862954, 0.26130258, 0.27577711};
  // Work on 8-bit values as torchvision does on a uint8 image: round the input to 1/255 steps,
  // resize, then round (half to even) and clamp back to 0..255.
  bool quantize_uint8 = true;
};

// [B, 3, H, W] (or [3, H, W]) RGB in [0, 1] -> normalised [B, 3, crop, crop] float32.
at::Tensor preprocess_image(const at::Tensor& images, const ImagePreprocessOptions& options);

}  // namespace a2a
