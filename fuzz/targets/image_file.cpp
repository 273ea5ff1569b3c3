// Image files through read_image: our structure checks (signature, declared sizes) before OpenCV.
#include <ATen/ATen.h>

#include "fuzz/fuzz_target.h"
#include "media/image_io.h"

namespace a2a::fuzz {

namespace {

const std::vector<std::string> kImageExtensions = {".png", ".jpg", ".bmp", ".webp"};

// Input: one byte choosing the extension, then the file.
void image_file(const Bytes& input) {
  const std::string path = scratch_media_file("image", kImageExtensions, input);
  if (path.empty()) return;
  at::Tensor image = read_image(path);
  fuzz_check(image.dim() == 3 && image.size(0) == 3 && image.numel() > 0, "a decoded image is not [3, H, W]");
  fuzz_check(image.min().item<float>() >= 0 && image.max().item<float>() <= 1, "pixels outside [0, 1]");
}

std::vector<std::pair<std::string, Bytes>> image_file_seeds() {
  std::vector<std::pair<std::string, Bytes>> seeds;
  const at::Tensor picture = at::linspace(0, 1, 3 * 5 * 7).reshape({3, 5, 7});
  for (int i = 0; i < 4; ++i) {
    const std::string path = scratch_folder() + "/seed" + kImageExtensions[i];
    write_image(picture, path);
    seeds.push_back({std::string("valid") + kImageExtensions[i], media_seed(i, path)});
  }
  const std::string png16 = scratch_folder() + "/seed16.png";
  write_image(picture, png16, {16});
  seeds.push_back({"valid16.png", media_seed(0, png16)});
  // An IHDR claiming 100000 x 100000 pixels.
  Bytes huge = read_bytes(scratch_folder() + "/seed.png");
  const unsigned char size[8] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0};
  huge.replace(16, 8, reinterpret_cast<const char*>(size), 8);
  seeds.push_back({"huge_ihdr.png", Bytes(1, '\0') + huge});
  return seeds;
}

}  // namespace

A2A_FUZZ_TARGET("image_file",
                "image files (PNG, JPEG, BMP, WebP) through read_image: signatures, declared sizes "
                "and the pixel bound before decoding, and the decoded tensor",
                image_file, image_file_seeds);

}  // namespace a2a::fuzz
