// imagebind_encoder: an image, a video, an audio clip or a text -> its ImageBind embedding [B, 1, D], one
// space for all four (imagebind_huge: D = 1024), as NExT-GPT feeds its input projection.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/path_query.h"
#include "encoders/imagebind_model.h"
#include "media/image_preprocess.h"
#include "media/imagebind_audio.h"
#include "media/imagebind_video.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "tokenizers/clip_tokenizer.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"

namespace a2a {
namespace {

struct ImageBindEncoder {
  ImageBindModel model{nullptr};
  // text -> [1, context_length] ids with the end token last on truncation (EOT pooling takes argmax).
  std::function<at::Tensor(const std::string&)> tokenize;
  std::string description;
};

ValueType imagebind_input_type(const std::string& modality) {
  if (modality == "image") return ValueType::Image;
  if (modality == "video") return ValueType::Video;
  if (modality == "audio") return ValueType::Audio;
  return ValueType::Text;
}

// The reference's modality name: images and video clips both go through the vision tower.
std::string imagebind_tower(const std::string& modality) {
  return modality == "image" || modality == "video" ? "vision" : modality;
}

std::string imagebind_modality_param(const Json& params) {
  return params.contains("modality") && params["modality"].is_string() ? params["modality"].get<std::string>()
                                                                       : std::string("image");
}

// The tiny preset's byte tokenizer: 256 = start, 257 = end (the largest id, so argmax finds it), 0 = padding.
at::Tensor imagebind_byte_tokenize(const std::string& text, int64_t context_length) {
  std::vector<int64_t> ids = {256};
  for (unsigned char c : text) ids.push_back(c);
  if (static_cast<int64_t>(ids.size()) >= context_length) ids.resize(context_length - 1);
  ids.push_back(257);
  ids.resize(context_length, 0);
  return torch::tensor(ids, torch::kLong).view({1, context_length});
}

constexpr int64_t kTinyImageBindBlocks = 2;
constexpr int64_t kTinyImageBindHeads = 4;

ImageBindOptions tiny_imagebind_options(const Json& params, const std::string& modality) {
  ImageBindOptions o;
  const int64_t width = param_int(params, "tiny_width");
  o.out_embed_dim = param_int(params, "tiny_embed_dim");
  o.vision_embed_dim = o.audio_embed_dim = o.text_embed_dim = width;
  o.vision_num_blocks = o.audio_num_blocks = o.text_num_blocks = kTinyImageBindBlocks;
  o.vision_num_heads = o.audio_num_heads = o.text_num_heads =
      width % kTinyImageBindHeads == 0 ? kTinyImageBindHeads : 1;
  o.text_vocab_size = 258;
  o.audio_logit_scale = param_bool(params, "audio_logit_scale");
  o.modalities = {imagebind_tower(modality)};
  o.validate();
  return o;
}

std::shared_ptr<ImageBindEncoder> tiny_imagebind_encoder(const Json& params, const std::string& modality,
                                                         const ConfigureContext& ctx) {
  auto encoder = std::make_shared<ImageBindEncoder>();
  encoder->model = ImageBindModel(tiny_imagebind_options(params, modality));
  initialize_seeded_weights(*encoder->model, static_cast<uint64_t>(param_int(params, "tiny_seed")));
  cast_floating_point(*encoder->model, dtype_from_name(ctx.dtype));
  encoder->model->to(torch::Device(ctx.device));
  encoder->model->eval();
  const int64_t context = encoder->model->options().text_context_length;
  encoder->tokenize = [context](const std::string& text) { return imagebind_byte_tokenize(text, context); };
  encoder->description = "tiny built-in preset";
  return encoder;
}

// The checkpoint: a .safetensors file or index, or a folder holding model.safetensors (and, for a
// checkpoint that is not imagebind_huge, a config.json of constructor arguments). Pickle is refused.
struct ResolvedImageBind {
  std::string weights;
  std::string folder;
  ImageBindOptions options;
};

ResolvedImageBind resolve_imagebind(const std::string& path, const Json& params, const std::string& modality) {
  if (!path_exists(path)) throw_input_error("missing_model", "imagebind_encoder: '" + path + "' does not exist");
  ResolvedImageBind out;
  out.folder = is_folder(path) ? path : std::filesystem::path(path).parent_path().string();
  if (!is_folder(path) && is_pickle_checkpoint(path)) refuse_pickle_checkpoint(path);
  out.weights = find_weights_file(path);
  ImageBindOptions base;
  const std::string config = (std::filesystem::path(out.folder) / "config.json").string();
  if (is_folder(path) && is_file(config)) base = ImageBindOptions::from_config(ConfigReader::from_file(config));
  out.options = ImageBindOptions::from_weights_file(out.weights, base);
  if (!out.options.has(imagebind_tower(modality))) {
    throw_input_error("bad_modality", "imagebind_encoder: " + out.weights + " holds no " + imagebind_tower(modality) +
                                          " weights (modality: " + modality + ")");
  }
  out.options.modalities = {imagebind_tower(modality)};
  out.options.audio_logit_scale = param_bool(params, "audio_logit_scale");
  return out;
}

// The BPE vocabulary (vocab.json + merges.txt of any CLIP tokenizer: ImageBind's bpe_simple_vocab_16e6 is
// CLIP's) from the tokenizer parameter or beside the model.
std::string text_tokenizer_folder(const std::string& tokenizer, const std::string& model_folder) {
  const std::string folder = tokenizer.empty() ? model_folder : tokenizer;
  for (const std::string& dir : {folder, folder + "/tokenizer"})
    if (is_file(dir + "/vocab.json") && is_file(dir + "/merges.txt")) return dir;
  throw_input_error("tokenizer_not_found", "imagebind_encoder: no vocab.json + merges.txt in " + folder +
                                               " (set the tokenizer parameter to a CLIP tokenizer folder)");
}

std::shared_ptr<ImageBindEncoder> load_imagebind_encoder(const std::string& path, const std::string& tokenizer,
                                                         const Json& params, const std::string& modality,
                                                         const ConfigureContext& ctx) {
  const ResolvedImageBind resolved = resolve_imagebind(path, params, modality);
  auto encoder = std::make_shared<ImageBindEncoder>();
  if (modality == "text") {
    std::shared_ptr<ClipTokenizer> bpe = ClipTokenizer::from_folder(text_tokenizer_folder(tokenizer, resolved.folder));
    const int64_t context = resolved.options.text_context_length;
    encoder->tokenize = [bpe, context](const std::string& text) { return imagebind_tokenize(*bpe, {text}, context); };
  }
  encoder->model = ImageBindModel(resolved.options);
  LoadOptions options;
  options.device = ctx.device;
  options.dtype = dtype_from_name(ctx.dtype);
  load_imagebind_weights(*encoder->model, resolved.weights, options);
  cast_floating_point(*encoder->model, *options.dtype);
  encoder->model->eval();
  encoder->description = resolved.weights;
  return encoder;
}

// The model's files (or the tiny preset's sizes), and the text tokenizer, before anything loads.
std::vector<ParamProblem> check_imagebind_params(const Json& params) {
  const std::string model = param_string(params, "model");
  const std::string modality = param_string(params, "modality");
  if (model.empty()) {
    try {
      tiny_imagebind_options(params, modality);
    } catch (const Error& e) {
      return {{"tiny_width", e.code(), e.message()}};
    }
    return {};
  }
  std::string folder;
  try {
    folder = resolve_imagebind(model, params, modality).folder;
  } catch (const Error& e) {
    return {{"model", e.code(), e.message()}};
  }
  if (modality != "text") return {};
  try {
    text_tokenizer_folder(param_string(params, "tokenizer"), folder);
  } catch (const Error& e) {
    return {{"tokenizer", e.code(), e.message()}};
  }
  return {};
}

// One model input per item of the batch, stacked: [B, 3, 224, 224] images, [B, clips, 3, 2, 224, 224] video
// clips, [B, clips, 1, mel, frames] fbanks, [B, 77] ids.
at::Tensor imagebind_model_input(const std::string& modality, const Value& value, const ImageBindEncoder& encoder,
                                 const std::string& stage_id) {
  if (modality == "text") return encoder.tokenize(value.text());
  const at::Tensor& t = value.tensor();
  auto bad = [&](const std::string& expected) {
    throw_input_error("bad_shape", "imagebind_encoder (stage '" + stage_id + "'): expected " + expected + ", got " +
                                       value.describe());
  };
  std::vector<at::Tensor> items;
  if (modality == "image") {
    if (t.dim() != 4 || t.size(1) != 3 || t.size(2) == 0 || t.size(3) == 0) bad("an image [B, 3, H, W]");
    ImagePreprocessOptions o;  // load_and_transform_vision_data: Resize(224, bicubic), CenterCrop(224), CLIP norm
    o.resize = o.crop = encoder.model->options().image_size;
    return preprocess_image(t.to(at::kCPU, at::kFloat), o);
  }
  if (modality == "video") {
    if (t.dim() != 5 || t.size(1) == 0 || t.size(2) != 3) bad("a video [B, T, 3, H, W]");
    ImageBindVideoOptions o;
    o.size = encoder.model->options().image_size;
    o.frames_per_clip = encoder.model->options().video_frames;
    for (int64_t b = 0; b < t.size(0); ++b) items.push_back(imagebind_video_clips(t[b].to(at::kFloat), value.fps(), o));
  } else {
    if (t.dim() != 3 || t.size(1) == 0 || t.size(2) == 0) bad("audio [B, C, S]");
    ImageBindAudioOptions o;
    o.num_mel_bins = encoder.model->options().audio_num_mel_bins;
    o.target_length = encoder.model->options().audio_target_len;
    for (int64_t b = 0; b < t.size(0); ++b)
      items.push_back(imagebind_audio_clips(t[b].to(at::kFloat), value.sample_rate(), o));
  }
  return at::stack(items);
}

class ImageBindEncoderStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    modality_ = param_string(params, "modality");
    const std::string model = param_string(params, "model");
    const std::string scale = param_bool(params, "audio_logit_scale") ? "scaled" : "unscaled";
    // Keyed by tower: an image stage and a video stage share the vision model.
    const std::string where = ":" + imagebind_tower(modality_) + ":" + scale + ":" + ctx.device + ":" + ctx.dtype;
    if (model.empty()) {
      auto create = [&] { return tiny_imagebind_encoder(params, modality_, ctx); };
      encoder_ = ctx.shared_module<ImageBindEncoder>(
          "imagebind_encoder:tiny:" + std::to_string(param_int(params, "tiny_width")) + ":" +
              std::to_string(param_int(params, "tiny_embed_dim")) + ":" +
              std::to_string(param_int(params, "tiny_seed")) + where,
          create);
    } else {
      const std::string path = ctx.resolve_path(model);
      const std::string tokenizer =
          param_string(params, "tokenizer").empty() ? "" : ctx.resolve_path(param_string(params, "tokenizer"));
      auto create = [&] { return load_imagebind_encoder(path, tokenizer, params, modality_, ctx); };
      encoder_ = ctx.shared_module<ImageBindEncoder>("imagebind_encoder:" + path + ":" + tokenizer + where, create);
    }
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const Value& value = input(inputs, modality_);
    at::Tensor x = imagebind_model_input(modality_, value, *encoder_, ctx.stage_id);
    ctx.check_cancelled();
    if (x.is_floating_point()) x = x.to(floating_point_dtype(*encoder_->model));
    at::Tensor rows = encoder_->model->embed(imagebind_tower(modality_), x.to(torch::Device(device_))).unsqueeze(1);
    ctx.report_progress(1, 1, modality_ + " encoded");
    return {{"embedding", Value::embedding(rows.to(torch::kCPU, torch::kFloat))}};
  }

  torch::nn::Module* module() override { return encoder_ ? encoder_->model.ptr().get() : nullptr; }

 private:
  std::shared_ptr<ImageBindEncoder> encoder_;
  std::string modality_ = "image";
  std::string device_ = "cpu";
};

StagePorts imagebind_ports(const Json& params) {
  const std::string modality = imagebind_modality_param(params);
  StagePorts ports;
  const char* doc = modality == "image"   ? "[B, 3, H, W] RGB in [0, 1], any size"
                    : modality == "video" ? "[B, T, 3, H, W] frames in [0, 1] with their fps"
                    : modality == "audio" ? "[B, C, S] samples at any rate (resampled to 16 kHz)"
                                          : "the text";
  ports.inputs.push_back(in_port(modality, imagebind_input_type(modality), doc));
  ports.outputs.push_back(out_port("embedding", ValueType::Embedding, "[B, 1, D] ImageBind embedding"));
  return ports;
}

StageInfo imagebind_encoder_info() {
  StageInfo info;
  info.type = "imagebind_encoder";
  info.description =
      "ImageBind encoder (facebookresearch/ImageBind, imagebind_huge: the encoder NExT-GPT uses), one modality per "
      "stage: image (Resize 224 bicubic, CenterCrop, CLIP normalisation, repeated to 2 frames), video (5 clips of 2 s "
      "x 2 frames, short side 224, 3 spatial crops; the 15 embeddings averaged), audio (16 kHz, 3 clips of 2 s, "
      "128-bin Kaldi fbank padded to 204 frames) or text (CLIP BPE, 77 tokens). The input port is named after the "
      "modality; the output is [B, 1, D], L2-normalised (text x the learnt logit scale, audio x 20 unless "
      "audio_logit_scale is false). Only the chosen modality's weights load. Without a model it builds a tiny "
      "2-block preset with seeded random weights and a byte tokenizer.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "imagebind_huge converted to safetensors (a file, an index, or a folder with model.safetensors and "
                 "optional config.json of constructor arguments); .pth is refused; empty = tiny built-in preset"),
      choice_param("modality", "image", {"image", "video", "audio", "text"}, "what the input is"),
      param_spec("tokenizer", ParamType::Path, "",
                 "text only: a CLIP tokenizer folder (vocab.json + merges.txt), when not beside the model"),
      param_spec("audio_logit_scale", ParamType::Bool, true,
                 "audio only: x20 after normalising, as the official imagebind_huge.pth does; false gives the "
                 "embeddings of NExT-GPT's copy of ImageBind, which its projections were trained on"),
      ranged_param("tiny_width", ParamType::Int, 32, 4, 4096, "trunk width of the tiny preset"),
      ranged_param("tiny_embed_dim", ParamType::Int, 32, 1, 4096, "output width D of the tiny preset"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports_for = imagebind_ports;
  info.ports = imagebind_ports(Json::object());
  info.create = [] { return std::make_unique<ImageBindEncoderStage>(); };
  info.check_params = check_imagebind_params;
  return info;
}

A2A_REGISTER_STAGE(imagebind_encoder_info);

}  // namespace
}  // namespace a2a
