// audio_diffusion: AudioLDM's denoising loop. A UNet2DConditionModel on mel-spectrogram latents, conditioned
// through its class embedding on a [B, D] vector (CLAP's normalised text embedding, or an LLM's audio output
// projection), with classifier-free guidance; the duration in seconds sets the number of latent rows.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

#include "base/error.h"
#include "base/path_query.h"
#include "diffusion/audioldm.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/unet2d_condition.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stages/diffusion_params.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

// AudioLDM-s-full-v2's scheduler_config.json: used when the model comes without one.
nlohmann::json audioldm_scheduler_config() {
  return {{"_class_name", "DDIMScheduler"}, {"beta_end", 0.0195},        {"beta_schedule", "scaled_linear"},
          {"beta_start", 0.0015},           {"clip_sample", false},      {"num_train_timesteps", 1000},
          {"prediction_type", "epsilon"},   {"set_alpha_to_one", false}, {"steps_offset", 1},
          {"thresholding", false},          {"trained_betas", nullptr}};
}

// AudioLDM's UNet layout at toy width: no attention in the first block, cross_attention_dim equal to each
// block's width (attn2 attends to the block's own states), the class embedding projected and concatenated
// to the time embedding.
// cross_attention_dim > 0 gives Tango's variant instead: no class embedding, attn2 on the text encoder's states.
UNet2DConditionOptions tiny_audioldm_unet_options(int64_t class_embed_dim, int64_t cross_attention_dim) {
  UNet2DConditionOptions o;
  o.sample_size = 32;
  o.in_channels = 8;
  o.out_channels = 8;
  o.block_out_channels = {16, 32};
  o.down_block_types = {"DownBlock2D", "CrossAttnDownBlock2D"};
  o.up_block_types = {"CrossAttnUpBlock2D", "UpBlock2D"};
  o.layers_per_block = {1};
  o.norm_num_groups = 8;
  o.cross_attention_dim = {16, 32};
  o.attention_head_dim = {2};  // the head count
  if (cross_attention_dim > 0) {
    o.cross_attention_dim = {cross_attention_dim};
    return o;
  }
  o.class_embed_type = "simple_projection";
  o.class_embeddings_concat = true;
  o.projection_class_embeddings_input_dim = class_embed_dim;
  return o;
}

// How the UNet takes its conditioning: AudioLDM's projected class embedding of a [B, 1, D] vector, or
// Tango's cross-attention on [B, L, D] encoder states with their mask.
bool takes_class_conditioning(const UNet2DConditionOptions& o) {
  return o.class_embed_type && o.projection_class_embeddings_input_dim &&
         (*o.class_embed_type == "simple_projection" || *o.class_embed_type == "projection");
}

// An embedding port's rows for cross-attention: [B, L, D] and its mask [B, L] (ones without one).
std::pair<at::Tensor, at::Tensor> encoder_states(const Value& value, const std::string& port, int64_t width) {
  at::Tensor states = value.tensor().to(at::kFloat);
  if (states.dim() != 3 || states.size(2) != width || states.size(1) == 0) {
    throw_input_error("bad_shape", "audio_diffusion: " + port + " " + c10::str(states.sizes()) + " must be [B, L, " +
                                       std::to_string(width) + "] (the UNet's cross_attention_dim)");
  }
  at::Tensor mask =
      value.mask().defined() ? value.mask().to(at::kLong) : at::ones({states.size(0), states.size(1)}, at::kLong);
  return {states, mask.view({states.size(0), states.size(1)})};
}

// audio_diffusion's values of the sampling parameters it shares with latent_diffusion.
const DiffusionParamDefaults& audio_sampling_defaults() {
  static const DiffusionParamDefaults defaults = [] {
    DiffusionParamDefaults d;
    d.scheduler_doc = "sampler; default = the class of the model's scheduler_config.json (AudioLDM's DDIM without one)";
    d.steps = 10;
    d.steps_doc = "denoising steps (AudioLDM's default 10)";
    d.guidance_scale = 2.5;
    d.batch_size_doc = "waveforms per conditioning row";
    return d;
  }();
  return defaults;
}

class AudioDiffusionStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    dtype_ = dtype_from_name(ctx.dtype);
    const std::string model = param_string(params, "model");
    nlohmann::json scheduler_config = audioldm_scheduler_config();
    if (model.empty()) {
      const int64_t class_dim = param_int(params, "tiny_class_embed_dim");
      const int64_t cross_dim = param_int(params, "tiny_cross_attention_dim");
      const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
      auto create = [&] {
        UNet2DConditionModel unet(tiny_audioldm_unet_options(class_dim, cross_dim));
        initialize_seeded_weights(*unet, seed);
        cast_floating_point(*unet, dtype_);
        unet->to(torch::Device(device_));
        unet->eval();
        return unet.ptr();
      };
      const std::string key = "audio_unet:tiny:" + std::to_string(class_dim) + ":" + std::to_string(cross_dim) + ":" +
                              std::to_string(seed) + ":" + device_ + ":" + ctx.dtype;
      unet_ = ctx.shared_module<UNet2DConditionModelImpl>(key, create);
      // The vae stages' tiny mel preset has two blocks; the hifigan stage's tiny preset keeps AudioLDM's
      // 64 bins and 10 ms frames.
      geometry_.vae_scale_factor = 2;
    } else {
      const std::string path = ctx.resolve_path(model);
      ComponentRequest request;
      request.component = "unet";
      request.who = "audio_diffusion";
      request.hint = "give an AudioLDM pipeline folder with unet/ or a UNet folder";
      const ResolvedComponent unet_files = resolve_component(path, request);
      const std::string& unet_dir = unet_files.folder;
      auto create = [&] {
        UNet2DConditionModel unet(UNet2DConditionOptions::from_config(unet_files.config));
        LoadOptions options;
        options.device = device_;
        options.dtype = dtype_;
        load_weights(*unet, unet_files.weights, options);
        cast_floating_point(*unet, dtype_);
        unet->eval();
        return unet.ptr();
      };
      unet_ = ctx.shared_module<UNet2DConditionModelImpl>("unet:" + unet_dir + ":" + device_ + ":" + ctx.dtype, create);
      // A UNet folder inside a pipeline folder takes the geometry and scheduler of that pipeline.
      const std::string pipeline_root =
          pipeline_root_of(unet_dir != path ? path : fs::path(path).parent_path().string(), "unet");
      geometry_ = read_audioldm_geometry(pipeline_root);
      const fs::path scheduler_file = fs::path(pipeline_root) / "scheduler" / "scheduler_config.json";
      if (!pipeline_root.empty() && path_exists(scheduler_file))
        scheduler_config = read_scheduler_config(scheduler_file.string());
    }
    const auto& o = unet_->options();
    class_conditioning_ = takes_class_conditioning(o);
    if (!class_conditioning_ && (o.class_embed_type || o.cross_attention_dim.size() != 1)) {
      throw_input_error("unsupported_model_config",
                        "audio_diffusion: the UNet must take its conditioning as a projected class embedding "
                        "(class_embed_type simple_projection, as AudioLDM's) or through cross-attention with one "
                        "cross_attention_dim and no class embedding (Tango's); this one has class_embed_type " +
                            o.class_embed_type.value_or("null"));
    }
    const std::string config_override = param_string(params, "scheduler_config");
    if (!config_override.empty()) scheduler_config = read_scheduler_config(ctx.resolve_path(config_override));
    for (auto [name, field] : {std::pair<const char*, int64_t*>{"mel_bins", &geometry_.mel_bins},
                               {"hop_length", &geometry_.hop_length},
                               {"sampling_rate", &geometry_.sampling_rate},
                               {"vae_scale_factor", &geometry_.vae_scale_factor}}) {
      const int64_t value = param_int(params, name);
      if (value > 0) *field = value;
    }
    sampling_ = DiffusionParams::parse(params, audio_sampling_defaults());
    // Built once here so that a bad configuration fails before any run.
    std::unique_ptr<Scheduler> probe = make_scheduler(sampling_.scheduler, scheduler_config);
    warning_ = sampling_.eta_warning(*probe);
    scheduler_config_ = scheduler_config;

    duration_ = param_float(params, "duration");
    if (duration_ <= 0) duration_ = geometry_.default_duration(o.sample_size.value_or(64));
    // Fails now on a duration shorter than one latent row.
    geometry_.latent_shape(1, o.in_channels, duration_);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    if (!warning_.empty()) ctx.warning(warning_);
    UNetInputs unet_inputs = class_conditioning_ ? class_inputs(inputs) : cross_attention_inputs(inputs);
    const int64_t batch = unet_inputs.batch;
    // A fresh scheduler per run: multistep schedulers keep state between steps.
    std::unique_ptr<Scheduler> scheduler = make_scheduler(sampling_.scheduler, scheduler_config_);

    SamplingOptions options = sampling_.sampling_options(ctx);
    options.device = torch::Device(device_);
    options.latent_shape = geometry_.latent_shape(batch, unet_->options().in_channels, duration_);

    UNet2DConditionModelImpl& unet = *unet_;
    // Without encoder states AudioLDM's attn2 attends to the block's own hidden states.
    // The latents stay float32 for the scheduler (diffusers' schedulers upcast in step() for the same reason);
    // the UNet sees them in its dtype.
    Denoiser denoiser = [&](const at::Tensor& latent_input, const at::Tensor& timestep) {
      return unet
          .forward(latent_input.to(dtype_), timestep, unet_inputs.encoder_hidden_states, unet_inputs.class_labels, {},
                   unet_inputs.encoder_attention_mask)
          .to(at::kFloat);
    };
    at::Tensor latents = run_guided_sampling(*scheduler, denoiser, options, sampling_.generator(ctx));
    return {{"latent", Value::latent(latents.to(at::kCPU))}};
  }

  torch::nn::Module* module() override { return unet_.get(); }

  const AudioLDMGeometry& geometry() const { return geometry_; }

 private:
  // The UNet's conditioning arguments for the guided batch ([negative, positive] rows under guidance).
  struct UNetInputs {
    int64_t batch = 0;  // latents per branch
    at::Tensor class_labels, encoder_hidden_states, encoder_attention_mask;
  };

  // batch_size waveforms per prompt, as diffusers' num_waveforms_per_prompt.
  UNetInputs class_inputs(const PortValues& inputs) const {
    const int64_t width = *unet_->options().projection_class_embeddings_input_dim;
    at::Tensor conditioning = class_vector(input(inputs, "conditioning").tensor(), "conditioning", width);
    const Value* value = optional_input(inputs, "negative_conditioning");
    at::Tensor negative =
        value ? class_vector(value->tensor(), "negative_conditioning", width) : at::zeros_like(conditioning);
    negative = rows_for_prompts(negative, conditioning.size(0), "negative_conditioning");
    UNetInputs out;
    conditioning = conditioning.repeat_interleave(sampling_.batch_size, 0);
    negative = negative.repeat_interleave(sampling_.batch_size, 0);
    out.batch = conditioning.size(0);
    out.class_labels =
        guidance_conditioning(negative, conditioning, sampling_.guidance_scale).to(torch::Device(device_), dtype_);
    return out;
  }

  UNetInputs cross_attention_inputs(const PortValues& inputs) const {
    const int64_t width = unet_->options().cross_attention_dim.at(0);
    auto [states, mask] = encoder_states(input(inputs, "conditioning"), "conditioning", width);
    at::Tensor negative = at::zeros_like(states), negative_mask = at::ones_like(mask);
    if (const Value* value = optional_input(inputs, "negative_conditioning"))
      std::tie(negative, negative_mask) = encoder_states(*value, "negative_conditioning", width);
    if (negative.size(1) != states.size(1)) {
      throw_input_error("bad_shape", "audio_diffusion: negative_conditioning has " + std::to_string(negative.size(1)) +
                                         " tokens, conditioning " + std::to_string(states.size(1)) +
                                         " (pad both to the same max_length)");
    }
    negative = rows_for_prompts(negative, states.size(0), "negative_conditioning");
    negative_mask = rows_for_prompts(negative_mask, states.size(0), "negative_conditioning");
    const int64_t copies = sampling_.batch_size;
    UNetInputs out;
    out.batch = states.size(0) * copies;
    const torch::Device device(device_);
    out.encoder_hidden_states = guidance_conditioning(negative.repeat_interleave(copies, 0),
                                                      states.repeat_interleave(copies, 0), sampling_.guidance_scale)
                                    .to(device, dtype_);
    out.encoder_attention_mask = guidance_conditioning(negative_mask.repeat_interleave(copies, 0),
                                                       mask.repeat_interleave(copies, 0), sampling_.guidance_scale)
                                     .to(device);
    return out;
  }

  // A negative of one row serves every prompt; otherwise the row counts must agree.
  static at::Tensor rows_for_prompts(at::Tensor negative, int64_t prompts, const std::string& port) {
    if (negative.size(0) == 1 && prompts > 1) {
      std::vector<int64_t> repeats(negative.dim(), 1);
      repeats[0] = prompts;
      negative = negative.repeat(repeats);
    }
    if (negative.size(0) != prompts) {
      throw_input_error("bad_shape", "audio_diffusion: " + port + " has " + std::to_string(negative.size(0)) +
                                         " rows, conditioning " + std::to_string(prompts));
    }
    return negative;
  }

  // [B, D] or [B, 1, D] (an embedding port) -> [B, D].
  static at::Tensor class_vector(const at::Tensor& embedding, const std::string& port, int64_t width) {
    at::Tensor v = embedding.to(at::kFloat);
    if (v.dim() == 3 && v.size(1) == 1) v = v.squeeze(1);
    if (v.dim() != 2 || v.size(1) != width) {
      throw_input_error("bad_shape", "audio_diffusion: " + port + " " + c10::str(embedding.sizes()) +
                                         " must be [B, 1, " + std::to_string(width) + "] or [B, " +
                                         std::to_string(width) +
                                         "] (the UNet's projection_class_embeddings_input_dim)");
    }
    return v;
  }

  std::shared_ptr<UNet2DConditionModelImpl> unet_;
  AudioLDMGeometry geometry_;
  nlohmann::json scheduler_config_;
  std::string device_ = "cpu";
  at::ScalarType dtype_ = at::kFloat;
  bool class_conditioning_ = true;
  std::string warning_;
  DiffusionParams sampling_;
  double duration_ = 0.0;
};

StageInfo audio_diffusion_info() {
  StageInfo info;
  info.type = "audio_diffusion";
  info.description =
      "AudioLDM's denoising loop: a UNet2DConditionModel on mel-spectrogram latents [B, 8, frames/f, mel/f], "
      "conditioned through its projected class embedding on a [B, 1, D] vector (clap_text_encoder's embedding or an "
      "LLM's audio output projection), or, for a UNet without class embedding (Tango's), through cross-attention on "
      "[B, L, D] text encoder states with their mask (t5_text_encoder's embedding); classifier-free guidance in one batched UNet call, a diffusers scheduler. "
      "The duration maps to mel frames as the pipeline does (5.12 s -> 512 frames at 10 ms). Outputs the latent "
      "scaled as the VAE expects it (vae_decode unscales it); vae_decode's sample is then the mel spectrogram for "
      "a vocoder. Without a model it builds a tiny preset with seeded random weights. The UNet computes in the "
      "pipeline's dtype (timestep embedding and attention softmax in float32); the latents, the scheduler's "
      "arithmetic and guidance stay float32, and so does the output latent.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "AudioLDM diffusers pipeline folder (model_index.json, unet/, vae/, vocoder/, scheduler/) or a UNet "
                 "folder; empty = tiny built-in preset"),
  };
  for (auto& spec : diffusion_param_specs(audio_sampling_defaults())) info.params.push_back(std::move(spec));
  info.params.insert(
      info.params.end(),
      {
          ranged_param("duration", ParamType::Float, 0.0, 0.0, 3600.0,
                       "seconds of audio; 0 = the UNet's sample_size · vae_scale_factor frames (5.12 s for AudioLDM)"),
          ranged_param("mel_bins", ParamType::Int, 0, 0, 4096,
                       "mel bins of the spectrogram; 0 = the vocoder's model_in_dim "
                       "(64 without a vocoder config)"),
          ranged_param("hop_length", ParamType::Int, 0, 0, 65536,
                       "waveform samples per mel frame; 0 = prod(vocoder upsample_rates) (160 without one)"),
          ranged_param("sampling_rate", ParamType::Int, 0, 0, 1000000, "0 = the vocoder's (16000 without one)"),
          ranged_param("vae_scale_factor", ParamType::Int, 0, 0, 64,
                       "mel pixels per latent pixel; 0 = from vae/config.json (4 without one, 2 for the tiny preset, "
                       "matching vae_decode's tiny mel preset)"),
          ranged_param("tiny_class_embed_dim", ParamType::Int, 32, 1, 8192,
                       "the tiny preset's conditioning width (the tiny CLAP encoder's projection_dim)"),
          ranged_param(
              "tiny_cross_attention_dim", ParamType::Int, 0, 0, 8192,
              "0: the tiny preset is AudioLDM's (class conditioning); D: Tango's, cross-attention on [B, L, D] "
              "text encoder states (the tiny T5 encoder's d_model)"),
          ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
      });
  info.ports.inputs = {
      in_port("conditioning", ValueType::Embedding,
              "AudioLDM: [B, 1, D] or [B, D] conditioning vector; Tango: [B, L, D] encoder states with their mask"),
      optional_in_port("negative_conditioning", ValueType::Embedding,
                       "the unconditional vector or states for guidance (the text encoder's negative_embedding), "
                       "B or 1 rows; absent = zeros"),
  };
  info.ports.outputs = {out_port("latent", ValueType::Latent, "[B·batch_size, C, frames/f, mel/f], scaled")};
  info.create = [] { return std::make_unique<AudioDiffusionStage>(); };
  return info;
}

A2A_REGISTER_STAGE(audio_diffusion_info);

}  // namespace
}  // namespace a2a
