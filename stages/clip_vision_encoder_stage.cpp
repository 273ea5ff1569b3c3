// clip_vision_encoder: image -> CLIP image embedding [B, 1, projection_dim], or the patch tokens of a hidden
// state [B, patches, D] for an LLM's vision input (LLaVA, NExT-GPT).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "encoders/clip_vision_model.h"
#include "media/image_preprocess.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stages/image_processor_config.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace a2a {
namespace {

struct ClipVisionEncoder {
  std::shared_ptr<torch::nn::Module> model;  // CLIPVisionModel or CLIPVisionModelWithProjection
  CLIPVisionTransformer vision_model{nullptr};
  torch::nn::Linear visual_projection{nullptr};  // only with projection
  ImagePreprocessOptions preprocess;
  std::string description;
};

constexpr int64_t kTinyVisionLayers = 2;

CLIPVisionConfig tiny_vision_config(const Json& params) {
  CLIPVisionConfig c;
  c.hidden_size = param_int(params, "tiny_hidden_size");
  c.intermediate_size = 2 * c.hidden_size;
  c.projection_dim = c.hidden_size;
  c.num_hidden_layers = kTinyVisionLayers;
  c.num_attention_heads = c.hidden_size % 4 == 0 ? 4 : 1;
  c.image_size = param_int(params, "tiny_image_size");
  c.patch_size = param_int(params, "tiny_patch_size");
  return CLIPVisionConfig::from_json(c.to_json());  // the config's own checks
}

// CLIP's preprocessing at the model's resolution; a preprocessor_config.json beside the model overrides it.
ImagePreprocessOptions preprocessing_for(const CLIPVisionConfig& config, const std::string& preprocessor_config) {
  ImagePreprocessOptions o;
  o.resize = config.image_size;
  o.crop = config.image_size;
  if (!preprocessor_config.empty()) o = image_processor_options(ConfigReader::from_file(preprocessor_config), o);
  if (o.crop != 0 && o.crop != config.image_size) {
    throw_input_error("bad_config", preprocessor_config + ": crop_size " + std::to_string(o.crop) +
                                        " differs from the model's image_size " + std::to_string(config.image_size));
  }
  if (config.num_channels != 3) {
    throw_input_error("bad_config", "clip_vision_encoder: the model takes " + std::to_string(config.num_channels) +
                                        " channels; images are RGB");
  }
  return o;
}

ComponentRequest vision_request(bool needs_weights) {
  ComponentRequest request;
  request.component = "image_encoder";
  request.who = "clip_vision_encoder";
  request.needs_weights = needs_weights;
  request.hint =
      "give a transformers CLIP vision (or full CLIP) model folder, or a diffusers pipeline folder with "
      "image_encoder/";
  return request;
}

struct ResolvedVisionModel {
  ResolvedComponent files;
  CLIPVisionConfig config;
  ImagePreprocessOptions preprocess;
};

ResolvedVisionModel resolve_vision_model(const std::string& model_path, bool needs_weights) {
  ResolvedVisionModel out;
  out.files = resolve_component(model_path, vision_request(needs_weights));
  out.config = CLIPVisionConfig::from_config(out.files.config);
  out.preprocess = preprocessing_for(out.config, find_preprocessor_config(out.files.folder, out.files.pipeline_root));
  return out;
}

std::shared_ptr<ClipVisionEncoder> load_vision_encoder(const std::string& model_path, const ConfigureContext& ctx) {
  const ResolvedVisionModel resolved = resolve_vision_model(model_path, /*needs_weights=*/true);
  const auto& config = resolved.config;
  auto encoder = std::make_shared<ClipVisionEncoder>();
  // The header alone tells which class the checkpoint is; the tensors are read by load_weights.
  if (SafeTensorsCheckpoint::open(resolved.files.weights)->contains("visual_projection.weight")) {
    CLIPVisionModelWithProjection model(config);
    encoder->vision_model = model->vision_model;
    encoder->visual_projection = model->visual_projection;
    encoder->model = model.ptr();
  } else {
    CLIPVisionModel model(config);
    encoder->vision_model = model->vision_model;
    encoder->model = model.ptr();
  }
  LoadOptions options;
  options.device = ctx.device;
  options.dtype = dtype_from_name(ctx.dtype);
  // A full CLIPModel checkpoint also holds the text tower, which this stage leaves unused.
  if (resolved.files.config.contains("vision_config")) options.ignored_unexpected = clip_model_text_keys();
  load_weights(*encoder->model, resolved.files.weights, options);
  cast_floating_point(*encoder->model, *options.dtype);
  encoder->model->eval();
  encoder->preprocess = resolved.preprocess;
  encoder->description = resolved.files.folder;
  return encoder;
}

// The tiny preset: a 2-layer CLIP vision model with projection and seeded weights.
std::shared_ptr<ClipVisionEncoder> tiny_vision_encoder(const Json& params, const ConfigureContext& ctx) {
  const CLIPVisionConfig config = tiny_vision_config(params);
  CLIPVisionModelWithProjection model(config);
  initialize_seeded_weights(*model, static_cast<uint64_t>(param_int(params, "tiny_seed")));
  cast_floating_point(*model, dtype_from_name(ctx.dtype));
  model->to(torch::Device(ctx.device));
  model->eval();
  auto encoder = std::make_shared<ClipVisionEncoder>();
  encoder->vision_model = model->vision_model;
  encoder->visual_projection = model->visual_projection;
  encoder->model = model.ptr();
  encoder->preprocess = preprocessing_for(config, "");
  encoder->description = "tiny built-in preset";
  return encoder;
}

bool wants_patch_tokens(const Json& params) { return param_string(params, "output") == "patch_tokens"; }

std::optional<int64_t> hidden_layer_param(const Json& params) {
  if (!params.contains("hidden_layer") || params["hidden_layer"].is_null()) return std::nullopt;
  return params["hidden_layer"].get<int64_t>();
}

// hidden_layer needs output: patch_tokens and must name one of the model's hidden states.
std::optional<ParamProblem> hidden_layer_problem(const Json& params, int64_t num_hidden_layers) {
  const auto layer = hidden_layer_param(params);
  if (!layer) return std::nullopt;
  if (!wants_patch_tokens(params))
    return ParamProblem{"hidden_layer", "conflicting_params",
                        "hidden_layer applies to output: patch_tokens; image_embeds always come from the last layer"};
  if (clip_hidden_layer_index(*layer, num_hidden_layers) < 0)
    return ParamProblem{"hidden_layer", "bad_hidden_layer",
                        "hidden_layer " + std::to_string(*layer) + " outside -" +
                            std::to_string(num_hidden_layers + 1) + ".." + std::to_string(num_hidden_layers) +
                            " (the model has " + std::to_string(num_hidden_layers) + " layers)"};
  return std::nullopt;
}

// The model's config and preprocessing (or the tiny preset's), and hidden_layer against its depth, before
// anything loads.
std::vector<ParamProblem> check_vision_params(const Json& params) {
  const std::string model = param_string(params, "model");
  int64_t layers = kTinyVisionLayers;
  try {
    layers = model.empty() ? tiny_vision_config(params).num_hidden_layers
                           : resolve_vision_model(model, /*needs_weights=*/false).config.num_hidden_layers;
  } catch (const Error& e) {
    return {{model.empty() ? "tiny_patch_size" : "model", e.code(), e.message()}};
  }
  if (auto problem = hidden_layer_problem(params, layers)) return {*problem};
  return {};
}

class ClipVisionEncoderStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    patch_tokens_ = wants_patch_tokens(params);
    const std::string model = param_string(params, "model");
    if (model.empty()) {
      auto create = [&] { return tiny_vision_encoder(params, ctx); };
      const std::string key = "clip_vision_encoder:tiny:" + std::to_string(param_int(params, "tiny_hidden_size")) +
                              ":" + std::to_string(param_int(params, "tiny_image_size")) + ":" +
                              std::to_string(param_int(params, "tiny_patch_size")) + ":" +
                              std::to_string(param_int(params, "tiny_seed")) + ":" + ctx.device + ":" + ctx.dtype;
      encoder_ = ctx.shared_module<ClipVisionEncoder>(key, create);
    } else {
      const std::string model_path = ctx.resolve_path(model);
      auto create = [&] { return load_vision_encoder(model_path, ctx); };
      encoder_ = ctx.shared_module<ClipVisionEncoder>(
          "clip_vision_encoder:" + model_path + ":" + ctx.device + ":" + ctx.dtype, create);
    }
    if (auto problem = hidden_layer_problem(params, encoder_->vision_model->config.num_hidden_layers))
      throw_config_error(problem->code, "clip_vision_encoder: " + problem->message);
    hidden_layer_ = hidden_layer_param(params).value_or(-1);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const Value& image = input(inputs, "image");
    const at::Tensor& t = image.tensor();
    if (t.dim() != 4 || t.size(1) != 3 || t.size(2) == 0 || t.size(3) == 0) {
      throw_input_error("bad_shape", "clip_vision_encoder (stage '" + ctx.stage_id +
                                         "'): expected an image [B, 3, H, W], got " + image.describe());
    }
    at::Tensor pixels = preprocess_image(t.to(at::kCPU, at::kFloat), encoder_->preprocess)
                            .to(torch::Device(device_), floating_point_dtype(*encoder_->model));
    auto& vision = *encoder_->vision_model;
    at::Tensor rows;
    if (patch_tokens_) {
      rows = vision.hidden_state(pixels, hidden_layer_).slice(1, 1);  // without the class token
    } else {
      at::Tensor pooled = vision.forward(pixels).pooler_output;
      rows = (encoder_->visual_projection ? encoder_->visual_projection(pooled) : pooled).unsqueeze(1);
    }
    ctx.report_progress(1, 1, "image encoded");
    return {{"embedding", Value::embedding(rows.to(torch::kCPU, torch::kFloat))}};
  }

  torch::nn::Module* module() override { return encoder_ ? encoder_->model.get() : nullptr; }

 private:
  std::shared_ptr<ClipVisionEncoder> encoder_;
  bool patch_tokens_ = false;
  int64_t hidden_layer_ = -1;
  std::string device_ = "cpu";
};

StageInfo clip_vision_encoder_info() {
  StageInfo info;
  info.type = "clip_vision_encoder";
  info.description =
      "CLIP vision encoder (transformers CLIPVisionModel / CLIPVisionModelWithProjection, or the vision half of a "
      "full CLIPModel checkpoint). The image is resized (shorter side), center-cropped and normalised as CLIP's "
      "image processor does, with the model folder's preprocessor_config.json when it has one. output: "
      "image_embeds gives [B, 1, projection_dim] (visual_projection of the post-layernorm class token; the "
      "un-projected pooled state for a model without projection); output: patch_tokens gives [B, patches, D], "
      "last_hidden_state or hidden_layer K (negative from the end, -2 = LLaVA's penultimate layer) without the "
      "class token. Without a model it builds a tiny 2-layer preset with seeded random weights. The model computes "
      "in the pipeline's dtype; the embeddings come out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "transformers CLIP vision or CLIP model folder (config.json, model.safetensors, optional "
                 "preprocessor_config.json) or a diffusers pipeline folder (image_encoder/, feature_extractor/); "
                 "empty = tiny built-in preset"),
      choice_param("output", "image_embeds", {"image_embeds", "patch_tokens"},
                   "image_embeds: [B, 1, projection_dim]; patch_tokens: [B, patches, D] without the class token"),
      ranged_param("hidden_layer", ParamType::Int, nullptr, -1024, 1024,
                   "with output: patch_tokens, hidden state K instead of last_hidden_state (0 = embeddings after "
                   "pre_layrnorm, N = last layer, negative from the end)"),
      ranged_param("tiny_hidden_size", ParamType::Int, 32, 4, 4096, "width of the tiny preset"),
      ranged_param("tiny_image_size", ParamType::Int, 224, 1, 4096, "input resolution of the tiny preset"),
      ranged_param("tiny_patch_size", ParamType::Int, 14, 1, 4096, "patch size of the tiny preset"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports.inputs = {in_port("image", ValueType::Image, "[B, 3, H, W] RGB in [0, 1], any size")};
  info.ports.outputs = {out_port("embedding", ValueType::Embedding,
                                 "[B, 1, projection_dim] image embedding, or [B, patches, D] patch tokens")};
  info.create = [] { return std::make_unique<ClipVisionEncoderStage>(); };
  info.check_params = check_vision_params;
  return info;
}

A2A_REGISTER_STAGE(clip_vision_encoder_info);

}  // namespace
}  // namespace a2a
