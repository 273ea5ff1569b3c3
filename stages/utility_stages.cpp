// Small non-model stages: text formatting and synthetic media sources. They make pipelines that
// need no weights (the default config, tests, examples).
#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "pipeline/registry.h"

namespace a2a {
namespace {

// Replaces every "{text}" in the template with the input text.
class TextTemplateStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override { template_ = param_string(params, "template"); }
  PortValues run(const PortValues& inputs, RunContext&) override {
    const Value* in = optional_input(inputs, "text");
    std::string text = in ? in->text() : "";
    std::string out;
    const std::string marker = "{text}";
    size_t pos = 0;
    for (;;) {
      size_t hit = template_.find(marker, pos);
      if (hit == std::string::npos) break;
      out += template_.substr(pos, hit - pos) + text;
      pos = hit + marker.size();
    }
    out += template_.substr(pos);
    return {{"text", Value::text(out)}};
  }

 private:
  std::string template_;
};

StageInfo text_template_info() {
  StageInfo info;
  info.type = "text_template";
  info.description = "Formats text: every {text} in the template becomes the input text";
  info.params = {param_spec("template", ParamType::String, "{text}", "the output text; {text} is replaced")};
  info.ports.inputs = {optional_in_port("text", ValueType::Text)};
  info.ports.outputs = {out_port("text", ValueType::Text)};
  info.create = [] { return std::make_unique<TextTemplateStage>(); };
  return info;
}
A2A_REGISTER_STAGE(text_template_info);

// A smooth colour pattern with seeded noise: a deterministic image source for media pipelines.
class TestPatternStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    width_ = param_int(params, "width");
    height_ = param_int(params, "height");
    noise_ = param_float(params, "noise");
  }
  PortValues run(const PortValues&, RunContext& ctx) override {
    auto y = torch::linspace(0, 1, height_).view({height_, 1}).expand({height_, width_});
    auto x = torch::linspace(0, 1, width_).view({1, width_}).expand({height_, width_});
    auto r = 0.5 + 0.5 * torch::sin(6.2831853 * (x + 0.25 * y));
    auto g = 0.5 + 0.5 * torch::cos(6.2831853 * (y - 0.5 * x));
    auto b = (x * y).sqrt();
    auto image = torch::stack({r, g, b}).unsqueeze(0);
    if (noise_ > 0) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.seed);
      image = image + noise_ * at::randn(image.sizes(), gen, image.options());
    }
    return {{"image", Value::image(image.clamp(0, 1).contiguous())}};
  }

 private:
  int64_t width_ = 64, height_ = 64;
  double noise_ = 0.0;
};

StageInfo test_pattern_info() {
  StageInfo info;
  info.type = "test_pattern";
  info.description = "Generates a deterministic colour test image";
  info.params = {ranged_param("width", ParamType::Int, 64, 1, 8192),
                 ranged_param("height", ParamType::Int, 64, 1, 8192),
                 ranged_param("noise", ParamType::Float, 0.0, 0.0, 1.0, "std of seeded Gaussian noise")};
  info.ports.outputs = {out_port("image", ValueType::Image)};
  info.create = [] { return std::make_unique<TestPatternStage>(); };
  return info;
}
A2A_REGISTER_STAGE(test_pattern_info);

// A sine tone with a short fade in and out: a deterministic audio source.
class ToneStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext&) override {
    frequency_ = param_float(params, "frequency");
    seconds_ = param_float(params, "seconds");
    sample_rate_ = param_int(params, "sample_rate");
    amplitude_ = param_float(params, "amplitude");
  }
  PortValues run(const PortValues&, RunContext&) override {
    const int64_t n = static_cast<int64_t>(std::llround(seconds_ * sample_rate_));
    auto t = torch::arange(n, torch::kDouble) / static_cast<double>(sample_rate_);
    auto wave = amplitude_ * torch::sin(2 * M_PI * frequency_ * t);
    const int64_t fade = std::min<int64_t>(n / 2, sample_rate_ / 100);
    if (fade > 0) {
      auto ramp = torch::linspace(0, 1, fade, torch::kDouble);
      wave.slice(0, 0, fade).mul_(ramp);
      wave.slice(0, n - fade, n).mul_(ramp.flip(0));
    }
    return {{"audio", Value::audio(wave.to(torch::kFloat).view({1, 1, n}), sample_rate_)}};
  }

 private:
  double frequency_ = 440, seconds_ = 1, amplitude_ = 0.5;
  int64_t sample_rate_ = 16000;
};

StageInfo tone_info() {
  StageInfo info;
  info.type = "tone";
  info.description = "Generates a sine tone";
  info.params = {ranged_param("frequency", ParamType::Float, 440.0, 1.0, 96000.0, "Hz"),
                 ranged_param("seconds", ParamType::Float, 1.0, 0.001, 3600.0),
                 ranged_param("sample_rate", ParamType::Int, 16000, 1000, 384000),
                 ranged_param("amplitude", ParamType::Float, 0.5, 0.0, 1.0)};
  info.ports.outputs = {out_port("audio", ValueType::Audio)};
  info.create = [] { return std::make_unique<ToneStage>(); };
  return info;
}
A2A_REGISTER_STAGE(tone_info);

}  // namespace
}  // namespace a2a
