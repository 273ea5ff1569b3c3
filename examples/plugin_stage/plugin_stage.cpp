// An example plugin stage: inverts an image's colours, blended by `strength`.
//
// Build: part of the normal CMake build, output <build>/plugins/liba2a_example_plugin.so.
// Use:   plugins: [${A2A_BUILD:-build}/plugins/liba2a_example_plugin.so]   (in a pipeline YAML)
//        a2a run pipeline.yaml --plugin build/plugins/liba2a_example_plugin.so
#include <ATen/ATen.h>

#include "base/error.h"
#include "pipeline/plugin_loader.h"
#include "pipeline/registry.h"

A2A_PLUGIN_EXPORT_ABI_VERSION()

namespace {

class InvertImageStage : public a2a::Stage {
 public:
  void configure(const a2a::Json& params, const a2a::ConfigureContext&) override {
    strength_ = a2a::param_float(params, "strength");
  }

  a2a::PortValues run(const a2a::PortValues& inputs, a2a::RunContext& ctx) override {
    const at::Tensor& image = a2a::input(inputs, "image").tensor();
    if (image.dim() != 4 || image.size(1) != 3) {
      a2a::throw_input_error("bad_shape", "stage '" + ctx.stage_id + "': expected an image [B, 3, H, W], got " +
                                              a2a::input(inputs, "image").describe());
    }
    const double s = strength_;
    at::Tensor out = image * (1.0 - s) + (1.0 - image) * s;
    ctx.report_progress(1, 1);
    return {{"image", a2a::Value::image(out)}};
  }

 private:
  double strength_ = 1.0;
};

a2a::StageInfo invert_image_info() {
  a2a::StageInfo info;
  info.type = "example_invert_image";
  info.description = "Inverts an image's colours (example plugin): out = (1 - s) x + s (1 - x).";
  info.params = {
      a2a::ranged_param("strength", a2a::ParamType::Float, 1.0, 0.0, 1.0, "blend between input and inverse")};
  info.ports.inputs = {a2a::in_port("image", a2a::ValueType::Image)};
  info.ports.outputs = {a2a::out_port("image", a2a::ValueType::Image)};
  info.create = [] { return std::make_unique<InvertImageStage>(); };
  return info;
}

A2A_REGISTER_STAGE(invert_image_info);

}  // namespace
