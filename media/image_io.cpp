#include "media/image_io.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstring>

#include "base/error.h"
#include "media/media_util.h"

namespace a2a {

using media_detail::lower_extension;

bool image_format_for_path(const std::string& path, ImageFormat* format) {
  const std::string ext = lower_extension(path);
  ImageFormat f;
  if (ext == ".png")
    f = ImageFormat::Png;
  else if (ext == ".jpg" || ext == ".jpeg")
    f = ImageFormat::Jpeg;
  else if (ext == ".bmp")
    f = ImageFormat::Bmp;
  else if (ext == ".webp")
    f = ImageFormat::WebP;
  else
    return false;
  if (format) *format = f;
  return true;
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::WebP: return "WebP";
  }
  return "?";
}

namespace {

uint32_t read_le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
uint32_t read_be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
uint16_t read_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

[[noreturn]] void fail_image(const std::string& code, const std::string& path, const std::string& what) {
  throw_input_error(code, "image '" + path + "': " + what);
}

bool sniff_format(const std::vector<uint8_t>& b, ImageFormat* format) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::memcmp(b.data(), png_sig, 8) == 0)
    *format = ImageFormat::Png;
  else if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
    *format = ImageFormat::Jpeg;
  else if (b.size() >= 2 && b[0] == 'B' && b[1] == 'M')
    *format = ImageFormat::Bmp;
  else if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WEBP", 4) == 0)
    *format = ImageFormat::WebP;
  else
    return false;
  return true;
}

// The picture's size as its header declares it, checked against the pixel bound before decoding.
struct DeclaredSize {
  uint64_t width = 0;
  uint64_t height = 0;
};

// Walks the chunk list up to IEND.
DeclaredSize check_png(const std::vector<uint8_t>& b, const std::string& path) {
  DeclaredSize size;
  size_t pos = 8;
  bool first = true;
  while (true) {
    if (pos + 8 > b.size()) fail_image("truncated_file", path, "PNG is truncated (ends before its IEND chunk)");
    const uint32_t length = read_be32(&b[pos]);
    const std::string type(reinterpret_cast<const char*>(&b[pos + 4]), 4);
    if (first && type != "IHDR") fail_image("corrupt_file", path, "PNG does not start with an IHDR chunk");
    if (uint64_t(pos) + 12 + length > b.size()) {
      fail_image("truncated_file", path, "PNG is truncated inside its '" + type + "' chunk");
    }
    if (first) {
      if (length < 13) fail_image("corrupt_file", path, "PNG has an IHDR chunk shorter than 13 bytes");
      size = {read_be32(&b[pos + 8]), read_be32(&b[pos + 12])};
    }
    first = false;
    pos += 12 + length;
    if (type == "IEND") return size;
  }
}

// Follows the marker segments and entropy-coded scans up to EOI.
DeclaredSize check_jpeg(const std::vector<uint8_t>& b, const std::string& path) {
  DeclaredSize size;
  size_t pos = 2;
  const size_t n = b.size();
  while (true) {
    while (pos < n && b[pos] != 0xFF) ++pos;  // tolerate padding between segments
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) fail_image("truncated_file", path, "JPEG is truncated (no end-of-image marker)");
    const uint8_t marker = b[pos++];
    if (marker == 0xD9) return size;                                     // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (pos + 2 > n) fail_image("truncated_file", path, "JPEG is truncated inside a segment header");
    const size_t length = (size_t(b[pos]) << 8) | b[pos + 1];
    if (length < 2) fail_image("corrupt_file", path, "JPEG has a segment with an invalid length");
    if (pos + length > n) fail_image("truncated_file", path, "JPEG is truncated inside a segment");
    const bool frame_header = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame_header && length >= 7)
      size = {(uint64_t(b[pos + 5]) << 8) | b[pos + 6], (uint64_t(b[pos + 3]) << 8) | b[pos + 4]};
    pos += length;
    if (marker == 0xDA) {  // start of scan: skip entropy-coded data up to the next real marker
      while (true) {
        while (pos < n && b[pos] != 0xFF) ++pos;
        if (pos + 1 >= n) fail_image("truncated_file", path, "JPEG is truncated inside its image data");
        const uint8_t next = b[pos + 1];
        if (next == 0x00 || (next >= 0xD0 && next <= 0xD7) || next == 0xFF) {
          pos += next == 0xFF ? 1 : 2;
          continue;
        }
        break;
      }
    }
  }
}

DeclaredSize check_bmp(const std::vector<uint8_t>& b, const std::string& path) {
  DeclaredSize size;
  if (b.size() < 54) fail_image("truncated_file", path, "BMP is truncated (shorter than its headers)");
  const uint32_t declared = read_le32(&b[2]);
  const uint32_t offset = read_le32(&b[10]);
  if (declared != 0 && declared > b.size()) {
    fail_image("truncated_file", path,
               "BMP is truncated: header declares " + std::to_string(declared) + " bytes, file has " +
                   std::to_string(b.size()));
  }
  if (offset >= b.size()) fail_image("truncated_file", path, "BMP is truncated before its pixel data");
  const uint32_t dib = read_le32(&b[14]);
  if (dib >= 40) {
    const int64_t width = static_cast<int32_t>(read_le32(&b[18]));
    const int64_t height = static_cast<int32_t>(read_le32(&b[22]));
    const uint16_t bpp = read_le16(&b[28]);
    const uint32_t compression = read_le32(&b[30]);
    if (width <= 0 || height == 0) fail_image("corrupt_file", path, "BMP has an invalid size");
    size = {uint64_t(width), uint64_t(height < 0 ? -height : height)};
    if (compression == 0 || compression == 3) {
      const uint64_t row = ((uint64_t(width) * bpp + 31) / 32) * 4;
      const uint64_t need = uint64_t(offset) + row * uint64_t(height < 0 ? -height : height);
      if (need > b.size()) {
        fail_image("truncated_file", path,
                   "BMP is truncated: its pixel data needs " + std::to_string(need) + " bytes, file has " +
                       std::to_string(b.size()));
      }
    }
  }
  return size;
}

// The extended format's canvas (24-bit sizes) is the only WebP header that can exceed the bound: the
// simple formats store 14-bit sizes.
DeclaredSize check_webp(const std::vector<uint8_t>& b, const std::string& path) {
  const uint64_t declared = uint64_t(read_le32(&b[4])) + 8;
  if (declared > b.size()) {
    fail_image("truncated_file", path,
               "WebP is truncated: RIFF header declares " + std::to_string(declared) + " bytes, file has " +
                   std::to_string(b.size()));
  }
  DeclaredSize size;
  if (b.size() >= 30 && std::memcmp(&b[12], "VP8X", 4) == 0) {
    auto le24 = [&](size_t at) { return uint64_t(b[at]) | (uint64_t(b[at + 1]) << 8) | (uint64_t(b[at + 2]) << 16); };
    size = {le24(24) + 1, le24(27) + 1};
  }
  return size;
}

std::string hex_prefix(const std::vector<uint8_t>& b) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(8, b.size()); ++i) {
    out += digits[b[i] >> 4];
    out += digits[b[i] & 15];
    out += ' ';
  }
  if (!out.empty()) out.pop_back();
  return out;
}

}  // namespace

at::Tensor read_image(const std::string& path, const ImageReadOptions& options) {
  auto bytes = media_detail::read_file_bytes(path, "image");
  ImageFormat format;
  if (!sniff_format(bytes, &format)) {
    fail_image("unsupported_format", path,
               "not a PNG, JPEG, BMP or WebP file (first bytes: " + hex_prefix(bytes) + ")");
  }
  DeclaredSize size;
  switch (format) {
    case ImageFormat::Png: size = check_png(bytes, path); break;
    case ImageFormat::Jpeg: size = check_jpeg(bytes, path); break;
    case ImageFormat::Bmp: size = check_bmp(bytes, path); break;
    case ImageFormat::WebP: size = check_webp(bytes, path); break;
  }
  // Both sizes are below 2^32, so the product cannot overflow.
  if (size.width * size.height > options.max_pixels) {
    fail_image("too_large", path,
               std::string(image_format_name(format)) + " declares " + std::to_string(size.width) + " x " +
                   std::to_string(size.height) + " pixels, over the limit of " + std::to_string(options.max_pixels) +
                   " pixels");
  }

  cv::Mat decoded;
  try {
    decoded = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail_image("corrupt_file", path, std::string(image_format_name(format)) + " could not be decoded: " + e.what());
  }
  if (decoded.empty()) {
    fail_image("corrupt_file", path,
               std::string(image_format_name(format)) + " data is corrupt and could not be decoded");
  }

  double scale;
  switch (decoded.depth()) {
    case CV_8U: scale = 1.0 / 255.0; break;
    case CV_16U: scale = 1.0 / 65535.0; break;
    case CV_32F: scale = 1.0; break;
    default: fail_image("unsupported_format", path, "unsupported sample depth (not 8- or 16-bit)");
  }
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: cv::cvtColor(decoded, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(decoded, rgb, cv::COLOR_BGRA2RGB); break;  // alpha dropped (see header)
    default: fail_image("unsupported_format", path, "unsupported channel count " + std::to_string(decoded.channels()));
  }
  cv::Mat as_float;
  rgb.convertTo(as_float, CV_32FC3, scale);
  auto hwc = at::from_blob(as_float.data, {as_float.rows, as_float.cols, 3}, at::kFloat);
  return hwc.permute({2, 0, 1}).clone(at::MemoryFormat::Contiguous);  // a copy: `as_float` dies here
}

void write_image(const at::Tensor& image, const std::string& path, const ImageWriteOptions& options) {
  ImageFormat format;
  if (!image_format_for_path(path, &format)) {
    throw_input_error("unsupported_format",
                      "cannot write image '" + path + "': the extension is not .png, .jpg, .jpeg, .bmp or .webp");
  }
  at::Tensor chw = image.detach().to(at::kCPU, at::kFloat);
  if (chw.dim() == 4 && chw.size(0) == 1) chw = chw[0];
  if (chw.dim() != 3 || (chw.size(0) != 3 && chw.size(0) != 1) || chw.size(1) == 0 || chw.size(2) == 0) {
    throw_input_error("bad_shape", "cannot write image '" + path + "': expected [3, H, W] or [1, 3, H, W], got " +
                                       std::string(c10::str(chw.sizes())));
  }
  if (chw.size(0) == 1) chw = chw.expand({3, chw.size(1), chw.size(2)});
  if (options.bit_depth != 8 && options.bit_depth != 16) {
    throw_input_error("bad_option", "cannot write image '" + path + "': bit depth must be 8 or 16");
  }
  if (options.bit_depth == 16 && format != ImageFormat::Png) {
    throw_input_error("bad_option", "cannot write image '" + path + "': 16-bit output needs PNG");
  }
  const double full = options.bit_depth == 16 ? 65535.0 : 255.0;
  // NaN would otherwise become an arbitrary integer.
  auto scaled = at::nan_to_num(chw, 0.0).clamp(0.0, 1.0).mul(full).round();
  auto hwc = scaled.flip({0}).permute({1, 2, 0}).contiguous();  // RGB -> BGR for OpenCV
  cv::Mat mat;
  cv::Mat as_float(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_32FC3, hwc.data_ptr<float>());
  as_float.convertTo(mat, options.bit_depth == 16 ? CV_16UC3 : CV_8UC3);

  std::vector<int> params;
  if (format == ImageFormat::Jpeg) params = {cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality};
  if (format == ImageFormat::WebP) params = {cv::IMWRITE_WEBP_QUALITY, options.webp_quality};
  std::vector<uint8_t> encoded;
  bool ok = false;
  try {
    ok = cv::imencode(media_detail::lower_extension(path), mat, encoded, params);
  } catch (const cv::Exception& e) {
    throw_input_error("encode_failed", "cannot encode image '" + path + "': " + e.what());
  }
  if (!ok) throw_input_error("encode_failed", "cannot encode image '" + path + "'");
  media_detail::write_file_bytes(path, encoded);
}

}  // namespace a2a
