#pragma once
// Reading and writing still images (PNG, JPEG, BMP, WebP) through OpenCV.
//
// Decoded images are float tensors [3, H, W], RGB, in [0, 1]:
//   - 8-bit files are divided by 255, 16-bit files (PNG) by 65535.
//   - Grayscale is expanded to three equal channels.
//   - Alpha is dropped, not composited: this is what PIL's Image.convert("RGB") does, and CLIP's and
//     ImageBind's reference preprocessing start from that call. A transparent pixel keeps the colour
//     stored under it.
// Before decoding, the file's structure is checked (signature, declared sizes, end markers) so that
// an empty, truncated or foreign file gives an a2a::Error (kind Input) naming the file and the
// problem, rather than a partly decoded picture.
#include <ATen/Tensor.h>

#include <string>

namespace a2a {

enum class ImageFormat { Png, Jpeg, Bmp, WebP };

// The format for a file name's extension (case-insensitive); false when it is not an image extension.
bool image_format_for_path(const std::string& path, ImageFormat* format);
const char* image_format_name(ImageFormat format);

struct ImageReadOptions {
  // The most pixels a file may declare (width x height, before anything is decoded): 2^28 is a
  // 16384 x 16384 picture, 3 GB as float RGB. More is `too_large`.
  uint64_t max_pixels = uint64_t{1} << 28;
};

// [3, H, W] float RGB in [0, 1]. Throws a2a::Error (Input) for a missing, empty, truncated, corrupt,
// unsupported or too large file.
at::Tensor read_image(const std::string& path, const ImageReadOptions& options = {});

struct ImageWriteOptions {
  int bit_depth = 8;       // 8, or 16 for PNG
  int jpeg_quality = 95;   // 0..100
  int webp_quality = 101;  // 1..100 lossy, above 100 lossless
};

// Writes [3, H, W] or [1, 3, H, W] (also [1, H, W] grayscale) float in [0, 1] (values are clamped)
// to the format given by the extension.
void write_image(const at::Tensor& image, const std::string& path, const ImageWriteOptions& options = {});

}  // namespace a2a
