// latent_diffusion: the denoising loop of Stable Diffusion-style pipelines around a UNet2DConditionModel.
// Text-to-image from pure noise, or image-to-image from an init latent and a strength.
#include "base/error.h"
#include "base/path_query.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/unet2d_condition.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "stages/diffusion_params.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>

namespace a2a {
namespace {

namespace fs = std::filesystem;

// Stable Diffusion 1.5's scheduler_config.json: the configuration used when a UNet comes without one.
nlohmann::json stable_diffusion_scheduler_config() {
  return {{"_class_name", "PNDMScheduler"},   {"beta_end", 0.012},
          {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085},
          {"num_train_timesteps", 1000},      {"set_alpha_to_one", false},
          {"skip_prk_steps", true},           {"steps_offset", 1},
          {"trained_betas", nullptr},         {"clip_sample", false},
          {"timestep_spacing", "leading"},    {"prediction_type", "epsilon"}};
}

// The tiny preset: Stable Diffusion 1.x's layout at toy width (two blocks of 32 and 64 channels, one
// resnet each), 4 latent channels, cross-attention width tiny_cross_attention_dim (the tiny CLIP text
// encoder's width by default).
UNet2DConditionOptions tiny_sd_unet_options(int64_t cross_attention_dim) {
  UNet2DConditionOptions o;
  o.sample_size = 16;
  o.block_out_channels = {32, 64};
  o.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
  o.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
  o.layers_per_block = {1};
  o.norm_num_groups = 8;
  o.cross_attention_dim = {cross_attention_dim};
  o.attention_head_dim = {2};  // the head count
  return o;
}

// Where the parts of a diffusers model live: `model` is a pipeline folder (model_index.json, unet/,
// scheduler/, vae/) or a UNet folder (config.json), possibly inside a pipeline folder.
struct ModelLayout {
  ResolvedComponent unet;
  fs::path scheduler_config;  // empty when absent
  fs::path vae_config;        // empty when absent
};

ModelLayout locate_model(const fs::path& root) {
  ModelLayout layout;
  ComponentRequest request;
  request.component = "unet";
  request.who = "latent_diffusion";
  request.hint =
      "give a diffusers pipeline folder with unet/ or a UNet folder (config.json + "
      "diffusion_pytorch_model.safetensors or its sharded index)";
  layout.unet = resolve_component(root.string(), request);
  const fs::path pipeline_root = layout.unet.pipeline_root.empty() ? fs::path(layout.unet.folder).parent_path()
                                                                   : fs::path(layout.unet.pipeline_root);
  if (path_exists(pipeline_root / "scheduler" / "scheduler_config.json"))
    layout.scheduler_config = pipeline_root / "scheduler" / "scheduler_config.json";
  if (path_exists(pipeline_root / "vae" / "config.json")) layout.vae_config = pipeline_root / "vae" / "config.json";
  return layout;
}

std::shared_ptr<UNet2DConditionModelImpl> load_unet(const ResolvedComponent& files, const std::string& device,
                                                    at::ScalarType dtype) {
  UNet2DConditionModel unet(UNet2DConditionOptions::from_config(files.config));
  LoadOptions options;
  options.device = device;
  options.dtype = dtype;
  load_weights(*unet, files.weights, options);
  cast_floating_point(*unet, dtype);
  unet->eval();
  return unet.ptr();
}

// 2^(number of VAE blocks - 1), as diffusers' pipelines compute vae_scale_factor.
int64_t vae_scale_factor_from(const fs::path& vae_config) {
  const nlohmann::json json = ConfigReader::from_file(vae_config.string()).json();
  if (!json.contains("block_out_channels") || !json["block_out_channels"].is_array() ||
      json["block_out_channels"].empty())
    return 8;
  return int64_t{1} << (json["block_out_channels"].size() - 1);
}

// Pixels per latent pixel: the vae_scale_factor parameter, else the pipeline's vae/config.json (8 without
// one); 2 for the tiny preset, whose VAE (the vae stages' tiny preset) has two blocks.
int64_t pixels_per_latent(const Json& params) {
  if (const int64_t given = param_int(params, "vae_scale_factor"); given > 0) return given;
  const std::string model = param_string(params, "model");
  if (model.empty()) return 2;
  const ModelLayout layout = locate_model(model);
  return layout.vae_config.empty() ? 8 : vae_scale_factor_from(layout.vae_config);
}

// The multiple width and height must be: 8, and the VAE's factor when that is larger.
int64_t image_size_multiple(int64_t vae_scale_factor) { return 8 * std::max<int64_t>(1, vae_scale_factor / 8); }

std::vector<ParamProblem> check_image_size(const Json& params) {
  std::vector<ParamProblem> problems;
  const int64_t multiple = image_size_multiple(pixels_per_latent(params));
  for (const char* name : {"width", "height"}) {
    const int64_t value = param_int(params, name);
    if (value % multiple != 0)
      problems.push_back({name, "bad_size",
                          std::string(name) + " " + std::to_string(value) + " must be a multiple of " +
                              std::to_string(multiple) + " (8 and the VAE's scale factor)"});
  }
  return problems;
}

// latent_diffusion's values of the sampling parameters it shares with audio_diffusion.
const DiffusionParamDefaults& latent_sampling_defaults() {
  static const DiffusionParamDefaults defaults = [] {
    DiffusionParamDefaults d;
    d.scheduler_doc =
        "sampler; default = the class of the model's scheduler_config.json (Stable Diffusion 1.5's PNDM "
        "without one). Others reuse the model's betas, prediction type and timestep spacing";
    d.steps = 50;
    d.guidance_scale = 7.5;
    d.batch_size_doc = "images per conditioning row";
    d.guidance_rescale = true;
    d.strength = true;
    return d;
  }();
  return defaults;
}

class LatentDiffusionStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    dtype_ = dtype_from_name(ctx.dtype);
    const std::string model = param_string(params, "model");
    nlohmann::json scheduler_config = stable_diffusion_scheduler_config();
    int64_t vae_scale_factor = 8;
    if (model.empty()) {
      const int64_t cross_attention_dim = param_int(params, "tiny_cross_attention_dim");
      const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
      auto create = [&] {
        UNet2DConditionModel unet(tiny_sd_unet_options(cross_attention_dim));
        initialize_seeded_weights(*unet, seed);
        cast_floating_point(*unet, dtype_);
        unet->to(torch::Device(device_));
        unet->eval();
        return unet.ptr();
      };
      const std::string key = "unet:tiny:" + std::to_string(cross_attention_dim) + ":" + std::to_string(seed) + ":" +
                              device_ + ":" + ctx.dtype;
      unet_ = ctx.shared_module<UNet2DConditionModelImpl>(key, create);
      // The vae stages' tiny preset has two blocks.
      vae_scale_factor = 2;
    } else {
      ModelLayout layout = locate_model(ctx.resolve_path(model));
      const std::string unet_path = layout.unet.folder;
      auto create = [&] { return load_unet(layout.unet, device_, dtype_); };
      unet_ =
          ctx.shared_module<UNet2DConditionModelImpl>("unet:" + unet_path + ":" + device_ + ":" + ctx.dtype, create);
      if (!layout.scheduler_config.empty()) scheduler_config = read_scheduler_config(layout.scheduler_config.string());
      if (!layout.vae_config.empty()) vae_scale_factor = vae_scale_factor_from(layout.vae_config);
    }
    const std::string config_override = param_string(params, "scheduler_config");
    if (!config_override.empty()) scheduler_config = read_scheduler_config(ctx.resolve_path(config_override));
    const int64_t factor_param = param_int(params, "vae_scale_factor");
    vae_scale_factor_ = factor_param > 0 ? factor_param : vae_scale_factor;

    sampling_ = DiffusionParams::parse(params, latent_sampling_defaults());
    // Built once here so that a bad configuration fails before any run.
    scheduler_ = make_scheduler(sampling_.scheduler, scheduler_config);
    scheduler_config_ = scheduler_config;

    width_ = param_int(params, "width");
    height_ = param_int(params, "height");
    const int64_t multiple = image_size_multiple(vae_scale_factor_);
    for (auto [name, value] : {std::pair<const char*, int64_t>{"width", width_}, {"height", height_}}) {
      if (value % multiple != 0)
        throw_input_error("bad_size", std::string("latent_diffusion: ") + name + " " + std::to_string(value) +
                                          " must be a multiple of " + std::to_string(multiple));
    }
    ctx_warning_ = sampling_.eta_warning(*scheduler_);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    if (!ctx_warning_.empty()) ctx.warning(ctx_warning_);
    const auto& o = unet_->options();
    const int64_t cross_dim = o.cross_attention_dim.front();

    at::Tensor conditioning = input(inputs, "conditioning").tensor().to(at::kFloat);
    check_embedding(conditioning, "conditioning", cross_dim);
    const int64_t prompts = conditioning.size(0);
    at::Tensor negative;
    if (const Value* value = optional_input(inputs, "negative_conditioning")) {
      negative = value->tensor().to(at::kFloat);
      check_embedding(negative, "negative_conditioning", cross_dim);
      if (negative.size(0) == 1 && prompts > 1) negative = negative.expand({prompts, -1, -1});
      if (negative.size(0) != prompts || negative.size(1) != conditioning.size(1))
        throw_input_error("bad_shape", "latent_diffusion: negative_conditioning " + c10::str(negative.sizes()) +
                                           " must match conditioning " + c10::str(conditioning.sizes()));
    } else {
      negative = at::zeros_like(conditioning);
    }
    // batch_size images per prompt, as diffusers' num_images_per_prompt.
    conditioning = conditioning.repeat_interleave(sampling_.batch_size, 0);
    negative = negative.repeat_interleave(sampling_.batch_size, 0);
    const int64_t batch = conditioning.size(0);

    const torch::Device device(device_);
    const at::Tensor encoder_hidden_states =
        guidance_conditioning(negative, conditioning, sampling_.guidance_scale).to(device, dtype_);

    // A fresh scheduler per run: multistep schedulers keep state between steps.
    std::unique_ptr<Scheduler> scheduler = make_scheduler(sampling_.scheduler, scheduler_config_);

    SamplingOptions options = sampling_.sampling_options(ctx);
    options.device = device;
    options.latent_shape = {batch, o.in_channels, height_ / vae_scale_factor_, width_ / vae_scale_factor_};
    if (const Value* init = optional_input(inputs, "init_latent")) {
      at::Tensor latent = init->tensor().to(at::kFloat);
      if (latent.dim() != 4 || latent.size(1) != o.in_channels)
        throw_input_error("bad_shape", "latent_diffusion: init_latent " + c10::str(latent.sizes()) + " must be [B, " +
                                           std::to_string(o.in_channels) + ", h, w]");
      if (latent.size(0) == 1 && batch > 1) latent = latent.expand({batch, -1, -1, -1}).contiguous();
      if (latent.size(0) != batch)
        throw_input_error("bad_shape", "latent_diffusion: init_latent has batch " + std::to_string(latent.size(0)) +
                                           ", expected 1 or " + std::to_string(batch));
      options.init_latent = latent;
    }

    UNet2DConditionModelImpl& unet = *unet_;
    // The latents stay float32 for the scheduler (diffusers' schedulers upcast in step() for the same reason);
    // the UNet sees them in its dtype.
    Denoiser denoiser = [&](const at::Tensor& latent_input, const at::Tensor& timestep) {
      return unet.forward(latent_input.to(dtype_), timestep, encoder_hidden_states).to(at::kFloat);
    };
    at::Tensor latents = run_guided_sampling(*scheduler, denoiser, options, sampling_.generator(ctx));
    return {{"latent", Value::latent(latents.to(at::kCPU))}};
  }

  torch::nn::Module* module() override { return unet_.get(); }

 private:
  static void check_embedding(const at::Tensor& embedding, const std::string& port, int64_t cross_dim) {
    if (embedding.dim() != 3 || embedding.size(2) != cross_dim)
      throw_input_error("bad_shape", "latent_diffusion: " + port + " " + c10::str(embedding.sizes()) +
                                         " must be [B, N, " + std::to_string(cross_dim) +
                                         "] (the UNet's cross_attention_dim)");
  }

  std::shared_ptr<UNet2DConditionModelImpl> unet_;
  std::unique_ptr<Scheduler> scheduler_;
  nlohmann::json scheduler_config_;
  std::string device_ = "cpu";
  at::ScalarType dtype_ = at::kFloat;
  std::string ctx_warning_;
  int64_t vae_scale_factor_ = 8;
  DiffusionParams sampling_;
  int64_t width_ = 512;
  int64_t height_ = 512;
};

StageInfo latent_diffusion_info() {
  StageInfo info;
  info.type = "latent_diffusion";
  info.description =
      "Denoising loop of Stable Diffusion-style pipelines: a UNet2DConditionModel conditioned on an embedding "
      "(from a text encoder or an LLM's output projection), classifier-free guidance in one batched UNet call, a "
      "diffusers scheduler, text-to-image from seeded noise or image-to-image from init_latent and strength. "
      "Outputs the latent scaled as the VAE expects it (vae_decode unscales it). Without a model it builds a tiny "
      "preset with seeded random weights. The UNet computes in the pipeline's dtype (timestep embedding and "
      "attention softmax in float32); the latents, the scheduler's arithmetic and guidance stay float32, and so "
      "does the output latent.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "diffusers pipeline folder (model_index.json, unet/, scheduler/) or UNet folder (config.json + "
                 "diffusion_pytorch_model.safetensors); empty = tiny built-in preset"),
  };
  for (auto& spec : diffusion_param_specs(latent_sampling_defaults())) info.params.push_back(std::move(spec));
  info.params.insert(
      info.params.end(),
      {
          ranged_param("width", ParamType::Int, 512, 8, 8192, "image width in pixels, a multiple of 8"),
          ranged_param("height", ParamType::Int, 512, 8, 8192, "image height in pixels, a multiple of 8"),
          ranged_param("vae_scale_factor", ParamType::Int, 0, 0, 64,
                       "pixels per latent pixel; 0 = from the pipeline's vae/config.json (8 without one, 2 for the "
                       "tiny preset, matching the vae stages' tiny preset)"),
          ranged_param("tiny_cross_attention_dim", ParamType::Int, 32, 4, 4096,
                       "the tiny preset's conditioning width (the tiny text encoder's width)"),
          ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
      });
  info.ports.inputs = {
      in_port("conditioning", ValueType::Embedding, "[B, N, cross_attention_dim] prompt embedding"),
      optional_in_port("negative_conditioning", ValueType::Embedding,
                       "[B or 1, N, cross_attention_dim] unconditional embedding for guidance (the text encoder's "
                       "empty or negative prompt); absent = zeros"),
      optional_in_port("init_latent", ValueType::Latent,
                       "[B or 1, C, h, w] scaled latent of a starting image (vae_encode); enables image-to-image"),
  };
  info.ports.outputs = {out_port("latent", ValueType::Latent, "[B·batch_size, C, height/f, width/f], scaled")};
  info.create = [] { return std::make_unique<LatentDiffusionStage>(); };
  info.check_params = check_image_size;
  return info;
}

A2A_REGISTER_STAGE(latent_diffusion_info);

}  // namespace
}  // namespace a2a
