// image_preprocess: CLIP / ImageBind image preprocessing as a stage.
// image [B, 3, H, W] in [0, 1] -> pixel_values [B, 3, crop, crop], resized (shorter side, antialiased),
// center-cropped and normalised with the given mean and std.
#include <torch/torch.h>

#include "base/error.h"
#include "media/image_preprocess.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"

namespace a2a {
namespace {

class ImagePreprocessStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    options_.resize = param_int(params, "size");
    options_.crop = param_int(params, "crop_size");
    options_.filter =
        param_string(params, "interpolation") == "bilinear" ? ResizeFilter::Bilinear : ResizeFilter::Bicubic;
    options_.mean = params.at("mean").get<std::vector<double>>();
    options_.std = params.at("std").get<std::vector<double>>();
    options_.quantize_uint8 = param_bool(params, "quantize_uint8");
    if (options_.mean.size() != 3 || options_.std.size() != 3) {
      throw_config_error("bad_param", "image_preprocess: mean and std need three values (R, G, B)");
    }
    for (double s : options_.std)
      if (!(s > 0.0)) throw_config_error("bad_param", "image_preprocess: std values must be positive");
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    const Value& image = input(inputs, "image");
    const at::Tensor& t = image.tensor();
    if (t.dim() != 4 || t.size(1) != 3 || t.size(2) == 0 || t.size(3) == 0) {
      throw_input_error("bad_shape", "image_preprocess (stage '" + ctx.stage_id +
                                         "'): expected an image [B, 3, H, W], got " + image.describe());
    }
    at::Tensor pixels = preprocess_image(t.to(at::kCPU), options_).to(t.device());
    // The resized and cropped image before normalisation, for viewing or saving.
    auto mean = torch::tensor(options_.mean, pixels.options()).view({1, 3, 1, 1});
    auto std = torch::tensor(options_.std, pixels.options()).view({1, 3, 1, 1});
    at::Tensor visible = (pixels * std + mean).clamp(0, 1);
    ctx.report_progress(1, 1);
    return {{"pixel_values", Value::tensor(pixels)}, {"image", Value::image(visible)}};
  }

 private:
  ImagePreprocessOptions options_;
};

StageInfo image_preprocess_info() {
  const ImagePreprocessOptions clip;
  StageInfo info;
  info.type = "image_preprocess";
  info.description =
      "Resize (shorter side, antialiased bicubic or bilinear as torchvision), center crop and normalise: "
      "CLIP's and ImageBind's image preprocessing.";
  info.params = {
      ranged_param("size", ParamType::Int, 224, 0, 16384, "shorter side after resizing (0 = keep)"),
      ranged_param("crop_size", ParamType::Int, 224, 0, 16384, "square center crop (0 = none)"),
      choice_param("interpolation", "bicubic", {"bicubic", "bilinear"}),
      ranged_param("mean", ParamType::FloatList, clip.mean, -1000.0, 1000.0, "per-channel mean (default: CLIP's)"),
      ranged_param("std", ParamType::FloatList, clip.std, -1000.0, 1000.0, "per-channel std (default: CLIP's)"),
      param_spec("quantize_uint8", ParamType::Bool, true,
                 "round to 8-bit values before and after resizing, as torchvision on a uint8 image"),
  };
  info.ports.inputs = {in_port("image", ValueType::Image)};
  info.ports.outputs = {out_port("pixel_values", ValueType::Tensor, "normalised [B, 3, crop, crop]"),
                        out_port("image", ValueType::Image, "resized and cropped, before normalisation")};
  info.create = [] { return std::make_unique<ImagePreprocessStage>(); };
  return info;
}

A2A_REGISTER_STAGE(image_preprocess_info);

}  // namespace
}  // namespace a2a
