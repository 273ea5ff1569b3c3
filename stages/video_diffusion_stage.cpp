// video_diffusion: text-to-video by Wan 2.1 (a transformer with a causal 3-D VAE) or by ModelScope /
// Zeroscope's 3-D UNet, through the shared guided sampler; the pipeline folder's model_index.json says which.
#include <torch/torch.h>

#include "base/error.h"
#include "base/path_query.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/video_pipeline.h"
#include "nn/dtype.h"
#include "pipeline/registry.h"
#include "stages/diffusion_params.h"

#include <filesystem>

namespace a2a {
namespace {

namespace fs = std::filesystem;

const DiffusionParamDefaults& video_sampling_defaults() {
  static const DiffusionParamDefaults defaults = [] {
    DiffusionParamDefaults d;
    d.scheduler_doc =
        "sampler; default = the class of the model's scheduler_config.json (Wan: UniPC with flow sigmas, "
        "shift 3; ModelScope: DDIM). Others reuse the model's schedule";
    d.steps = 50;
    d.guidance_scale = 5.0;
    d.batch_size_doc = "videos per conditioning row";
    return d;
  }();
  return defaults;
}

// The architecture a stage runs: the parameter, else model_index.json's, else wan for the tiny preset.
std::string resolved_architecture(const Json& params) {
  const std::string given = param_string(params, "architecture");
  const std::string model = param_string(params, "model");
  if (model.empty()) return given == "auto" ? "wan" : given;
  const std::string found = video_architecture_of(model);
  if (given != "auto" && given != found)
    throw_input_error("architecture_mismatch", "architecture " + given + " does not match the model, whose " +
                                                   "model_index.json names a " + found + " pipeline");
  return found;
}

VideoSize requested_size(const Json& params) {
  return {param_int(params, "frames"), param_int(params, "height"), param_int(params, "width")};
}

std::vector<ParamProblem> check_video_params(const Json& params) {
  std::string architecture;
  try {
    architecture = resolved_architecture(params);
  } catch (const Error& e) {
    return {{e.code() == "architecture_mismatch" ? "architecture" : "model", e.code(), e.message()}};
  }
  const std::string model = param_string(params, "model");
  VideoSizeRules rules;
  try {
    rules = model.empty() ? tiny_video_size_rules(architecture) : video_size_rules_of(model, architecture);
  } catch (const Error& e) {
    return {{"model", e.code(), e.message()}};
  }
  std::vector<ParamProblem> problems;
  for (const std::string& message : rules.problems(requested_size(params))) {
    const std::string param = message.substr(0, message.find(' '));
    problems.push_back({param, param == "frames" ? "bad_frames" : "bad_size", message});
  }
  return problems;
}

class VideoDiffusionStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    const at::ScalarType dtype = dtype_from_name(ctx.dtype);
    const std::string architecture = resolved_architecture(params);
    const std::string model = param_string(params, "model");
    if (model.empty()) {
      const int64_t width = param_int(params, "tiny_conditioning_dim");
      const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
      const std::string key = "video:tiny:" + architecture + ":" + std::to_string(width) + ":" + std::to_string(seed) +
                              ":" + ctx.device + ":" + ctx.dtype;
      pipeline_ = ctx.shared_module<VideoPipeline>(
          key, [&] { return tiny_video_pipeline(architecture, width, seed, ctx.device, dtype); });
    } else {
      const std::string folder = ctx.resolve_path(model);
      pipeline_ = ctx.shared_module<VideoPipeline>("video:" + folder + ":" + ctx.device + ":" + ctx.dtype, [&] {
        return load_video_pipeline(folder, architecture, ctx.device, dtype);
      });
      const fs::path scheduler = fs::path(folder) / "scheduler" / "scheduler_config.json";
      if (is_file(scheduler)) scheduler_config_ = read_scheduler_config(scheduler.string());
    }
    if (scheduler_config_.is_null()) scheduler_config_ = pipeline_->default_scheduler_config();
    const std::string config_override = param_string(params, "scheduler_config");
    if (!config_override.empty()) scheduler_config_ = read_scheduler_config(ctx.resolve_path(config_override));
    sampling_ = DiffusionParams::parse(params, video_sampling_defaults());
    // Built once here so that a bad configuration fails before any run.
    warning_ = sampling_.eta_warning(*make_scheduler(sampling_.scheduler, scheduler_config_));

    size_ = requested_size(params);
    if (const auto problems = pipeline_->size_rules().problems(size_); !problems.empty())
      throw_input_error("bad_size", "video_diffusion: " + problems.front());
    fps_ = param_float(params, "fps") > 0 ? param_float(params, "fps") : pipeline_->default_fps();
    batched_guidance_ = param_bool(params, "batched_guidance");
    device_ = torch::Device(ctx.device);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    if (!warning_.empty()) ctx.warning(warning_);
    if (optional_input(inputs, "first_frame"))
      throw_input_error("unsupported_input",
                        "video_diffusion: first_frame (image-to-video) is reserved and not implemented yet");
    auto [negative, positive] = conditioning_rows(inputs);
    const int64_t batch = positive.size(0);
    const bool guided = uses_classifier_free_guidance(sampling_.guidance_scale);
    // One batched denoiser call holds both halves; rows of different lengths cannot share one.
    const bool one_call = !guided || (batched_guidance_ && negative.size(1) == positive.size(1));
    const at::Tensor conditioning =
        one_call ? guidance_conditioning(negative, positive, sampling_.guidance_scale).to(device_) : at::Tensor();
    const at::Tensor negative_rows = negative.to(device_), positive_rows = positive.to(device_);

    VideoPipeline& pipeline = *pipeline_;
    Denoiser denoiser = [&](const at::Tensor& latents, const at::Tensor& timestep) {
      if (one_call) return pipeline.predict(latents, timestep, conditioning);
      return predict_in_two_calls(pipeline, latents, timestep, negative_rows, positive_rows);
    };
    SamplingOptions options = sampling_.sampling_options(ctx);
    options.device = device_;
    options.latent_shape = pipeline.latent_shape(batch, size_);
    if (pipeline.steps_on_folded_frames()) {
      options.to_step_layout = fold_frames;
      options.from_step_layout = [batch](const at::Tensor& folded) { return unfold_frames(folded, batch); };
    }
    std::unique_ptr<Scheduler> scheduler = make_scheduler(sampling_.scheduler, scheduler_config_);
    const at::Tensor latents = run_guided_sampling(*scheduler, denoiser, options, sampling_.generator(ctx));
    if (ctx.cancel) ctx.cancel->check();
    const at::Tensor frames =
        pipeline.decode(latents, [&ctx](int64_t done, int64_t total) { ctx.report_progress(done, total, "decoding"); });
    return {{"video", Value::video(frames.to(at::kCPU), fps_)}, {"latent", Value::latent(latents.to(at::kCPU))}};
  }

  torch::nn::Module* module() override { return &pipeline_->denoiser_module(); }

 private:
  // The negative and positive conditioning, float32, batch_size rows per prompt.
  std::pair<at::Tensor, at::Tensor> conditioning_rows(const PortValues& inputs) const {
    at::Tensor positive = input(inputs, "conditioning").tensor().to(at::kFloat);
    check_conditioning(positive, "conditioning");
    at::Tensor negative = at::zeros_like(positive);
    if (const Value* value = optional_input(inputs, "negative_conditioning")) {
      negative = value->tensor().to(at::kFloat);
      check_conditioning(negative, "negative_conditioning");
      if (negative.size(0) == 1) negative = negative.expand({positive.size(0), -1, -1});
      if (negative.size(0) != positive.size(0))
        throw_input_error("bad_shape", "video_diffusion: negative_conditioning " + c10::str(negative.sizes()) +
                                           " must have batch 1 or the conditioning's " +
                                           std::to_string(positive.size(0)));
    }
    return {negative.repeat_interleave(sampling_.batch_size, 0), positive.repeat_interleave(sampling_.batch_size, 0)};
  }

  void check_conditioning(const at::Tensor& rows, const std::string& port) const {
    const int64_t width = pipeline_->conditioning_width();
    if (rows.dim() != 3 || rows.size(2) != width || rows.size(1) < 1)
      throw_input_error("bad_shape", "video_diffusion: " + port + " " + c10::str(rows.sizes()) + " must be [B, N, " +
                                         std::to_string(width) + "] (the " + pipeline_->architecture() +
                                         " denoiser's conditioning width)");
  }

  std::shared_ptr<VideoPipeline> pipeline_;
  nlohmann::json scheduler_config_;
  DiffusionParams sampling_;
  VideoSize size_;
  double fps_ = 16.0;
  bool batched_guidance_ = true;
  torch::Device device_ = torch::kCPU;
  std::string warning_;
};

StageInfo video_diffusion_info() {
  StageInfo info;
  info.type = "video_diffusion";
  info.description =
      "Text-to-video: Wan 2.1 (WanTransformer3DModel + AutoencoderKLWan, UniPC flow matching) or ModelScope / "
      "Zeroscope (UNet3DConditionModel + Stable Diffusion's VAE frame by frame), as model_index.json names it. "
      "Conditioning is any [B, N, D] embedding (UMT5 states for Wan, CLIP for ModelScope, or an LLM's video "
      "projection); classifier-free guidance against negative_conditioning in one batched call. Outputs the "
      "video with its fps and the final latent. Without a model it builds a tiny preset of the chosen "
      "architecture with seeded random weights.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "diffusers pipeline folder (model_index.json; Wan2.1-T2V-1.3B-Diffusers or zeroscope_v2_576w); "
                 "empty = tiny built-in preset"),
      choice_param("architecture", "auto", {"auto", "wan", "unet3d"},
                   "auto = model_index.json's pipeline (wan for the tiny preset); a value that contradicts the "
                   "model is an error"),
      ranged_param("frames", ParamType::Int, 9, 1, 1024, "frames; Wan needs 1 + 4k (81 in Wan 2.1)"),
      ranged_param("fps", ParamType::Float, 0.0, 0.0, 240.0,
                   "frames per second of the output video; 0 = the model's (Wan 16, ModelScope 8)"),
      ranged_param("width", ParamType::Int, 64, 8, 4096, "width in pixels (Wan: a multiple of 16)"),
      ranged_param("height", ParamType::Int, 64, 8, 4096, "height in pixels (Wan: a multiple of 16)"),
  };
  for (auto& spec : diffusion_param_specs(video_sampling_defaults())) info.params.push_back(std::move(spec));
  info.params.insert(
      info.params.end(),
      {
          param_spec("batched_guidance", ParamType::Bool, true,
                     "run the unconditional and conditional halves in one denoiser call (false: two calls, as "
                     "the reference pipelines do, at half the activation memory)"),
          ranged_param("tiny_conditioning_dim", ParamType::Int, 32, 4, 4096,
                       "the tiny preset's conditioning width (the tiny text encoder's width)"),
          ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
      });
  info.ports.inputs = {
      in_port("conditioning", ValueType::Embedding, "[B, N, D] prompt states (D = the denoiser's text width)"),
      optional_in_port("negative_conditioning", ValueType::Embedding,
                       "[B or 1, N, D] unconditional states for guidance (the empty prompt's); absent = zeros"),
      optional_in_port("first_frame", ValueType::Image,
                       "reserved for image-to-video (Wan I2V); connecting it is an error for now"),
  };
  info.ports.outputs = {
      out_port("video", ValueType::Video, "[B·batch_size, frames, 3, height, width] in [0, 1], with fps"),
      out_port("latent", ValueType::Latent, "the final latent [B·batch_size, C, f, h, w] in the denoiser's space"),
  };
  info.create = [] { return std::make_unique<VideoDiffusionStage>(); };
  info.check_params = check_video_params;
  return info;
}

A2A_REGISTER_STAGE(video_diffusion_info);

}  // namespace
}  // namespace a2a
