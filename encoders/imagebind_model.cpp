#include "encoders/imagebind_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "base/error.h"
#include "base/suggest.h"
#include "tokenizers/clip_tokenizer.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace a2a {

const std::vector<std::string>& imagebind_modalities() {
  static const std::vector<std::string> names = {"vision", "text", "audio", "depth", "thermal", "imu"};
  return names;
}

namespace {

// Every integer constructor argument, by its reference name.
std::vector<std::pair<const char*, int64_t ImageBindOptions::*>> imagebind_int_fields() {
  using O = ImageBindOptions;
  return {{"video_frames", &O::video_frames},
          {"audio_kernel_size", &O::audio_kernel_size},
          {"audio_stride", &O::audio_stride},
          {"out_embed_dim", &O::out_embed_dim},
          {"vision_embed_dim", &O::vision_embed_dim},
          {"vision_num_blocks", &O::vision_num_blocks},
          {"vision_num_heads", &O::vision_num_heads},
          {"audio_embed_dim", &O::audio_embed_dim},
          {"audio_num_blocks", &O::audio_num_blocks},
          {"audio_num_heads", &O::audio_num_heads},
          {"audio_num_mel_bins", &O::audio_num_mel_bins},
          {"audio_target_len", &O::audio_target_len},
          {"text_embed_dim", &O::text_embed_dim},
          {"text_num_blocks", &O::text_num_blocks},
          {"text_num_heads", &O::text_num_heads},
          {"depth_embed_dim", &O::depth_embed_dim},
          {"depth_kernel_size", &O::depth_kernel_size},
          {"depth_num_blocks", &O::depth_num_blocks},
          {"depth_num_heads", &O::depth_num_heads},
          {"thermal_embed_dim", &O::thermal_embed_dim},
          {"thermal_kernel_size", &O::thermal_kernel_size},
          {"thermal_num_blocks", &O::thermal_num_blocks},
          {"thermal_num_heads", &O::thermal_num_heads},
          {"imu_embed_dim", &O::imu_embed_dim},
          {"imu_kernel_size", &O::imu_kernel_size},
          {"imu_num_blocks", &O::imu_num_blocks},
          {"imu_num_heads", &O::imu_num_heads},
          {"text_vocab_size", &O::text_vocab_size},
          {"text_context_length", &O::text_context_length},
          {"image_size", &O::image_size}};
}

[[noreturn]] void bad_imagebind_config(const std::string& what) {
  throw_input_error("bad_config", "ImageBind options: " + what);
}

struct TrunkSizes {
  int64_t dim, blocks, heads;
};

TrunkSizes trunk_sizes(const ImageBindOptions& o, const std::string& m) {
  if (m == "vision") return {o.vision_embed_dim, o.vision_num_blocks, o.vision_num_heads};
  if (m == "text") return {o.text_embed_dim, o.text_num_blocks, o.text_num_heads};
  if (m == "audio") return {o.audio_embed_dim, o.audio_num_blocks, o.audio_num_heads};
  if (m == "depth") return {o.depth_embed_dim, o.depth_num_blocks, o.depth_num_heads};
  if (m == "thermal") return {o.thermal_embed_dim, o.thermal_num_blocks, o.thermal_num_heads};
  return {o.imu_embed_dim, o.imu_num_blocks, o.imu_num_heads};
}

}  // namespace

bool ImageBindOptions::has(const std::string& modality) const {
  return std::find(modalities.begin(), modalities.end(), modality) != modalities.end();
}

void ImageBindOptions::validate() const {
  for (const auto& m : modalities) {
    if (!std::count(imagebind_modalities().begin(), imagebind_modalities().end(), m)) {
      bad_imagebind_config("unknown modality \"" + m + "\"" + did_you_mean(m, imagebind_modalities()) +
                           " (vision, text, audio, depth, thermal, imu)");
    }
    const TrunkSizes t = trunk_sizes(*this, m);
    if (t.dim <= 0 || t.heads <= 0 || t.dim % t.heads != 0) {
      bad_imagebind_config(m + "_embed_dim " + std::to_string(t.dim) + " must be a positive multiple of " + m +
                           "_num_heads " + std::to_string(t.heads));
    }
    if (t.blocks < 0) bad_imagebind_config(m + "_num_blocks must not be negative");
  }
  if (out_embed_dim <= 0) bad_imagebind_config("out_embed_dim must be positive");
  if (kernel_size.size() != 3 || *std::min_element(kernel_size.begin(), kernel_size.end()) <= 0) {
    bad_imagebind_config("kernel_size must be three positive values (frames, height, width)");
  }
  const int64_t positive[] = {video_frames,        audio_kernel_size, audio_stride,        audio_num_mel_bins,
                              audio_target_len,    depth_kernel_size, thermal_kernel_size, text_vocab_size,
                              text_context_length, image_size};
  if (*std::min_element(std::begin(positive), std::end(positive)) <= 0) {
    bad_imagebind_config(
        "frames, kernels, strides, mel bins, target length, vocabulary, context and image size "
        "must be positive");
  }
}

ImageBindOptions ImageBindOptions::from_config(const ConfigReader& config) {
  ImageBindOptions o;
  for (const auto& [key, field] : imagebind_int_fields()) config.read(key, o.*field);
  config.read("kernel_size", o.kernel_size);
  config.read("audio_drop_path", o.audio_drop_path);
  config.read("depth_drop_path", o.depth_drop_path);
  config.read("thermal_drop_path", o.thermal_drop_path);
  config.read("imu_drop_path", o.imu_drop_path);
  config.read("audio_logit_scale", o.audio_logit_scale);
  config.read("modalities", o.modalities);
  o.validate();
  return o;
}

namespace {

using ImageBindShapeMap = std::map<std::string, std::vector<int64_t>>;

const std::vector<int64_t>* find_shape(const ImageBindShapeMap& shapes, const std::string& name) {
  auto it = shapes.find(name);
  return it == shapes.end() ? nullptr : &it->second;
}

// 1 + the largest N of "<prefix>N." keys; 0 when there are none.
int64_t count_blocks(const ImageBindShapeMap& shapes, const std::string& prefix) {
  int64_t count = 0;
  for (auto it = shapes.lower_bound(prefix); it != shapes.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    const std::string rest = it->first.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos) continue;
    if (rest.find_first_not_of("0123456789") != dot) continue;
    count = std::max<int64_t>(count, std::stoll(rest.substr(0, dot)) + 1);
  }
  return count;
}

}  // namespace

ImageBindOptions ImageBindOptions::from_weights(const ImageBindShapeMap& shapes, const ImageBindOptions& base) {
  ImageBindOptions o = base;
  o.modalities.clear();
  const std::string pre = "modality_preprocessors.";
  auto dim_of = [&](const std::string& name) -> const std::vector<int64_t>* {
    const auto* s = find_shape(shapes, pre + name);
    return s && s->size() == 3 ? s : nullptr;
  };
  for (const auto& m : imagebind_modalities()) {
    const bool present = m == "text" ? find_shape(shapes, pre + "text.token_embedding.weight") != nullptr
                                     : dim_of(m + ".cls_token") != nullptr;
    if (present) o.modalities.push_back(m);
  }
  auto blocks = [&](const std::string& m) { return count_blocks(shapes, "modality_trunks." + m + ".blocks."); };
  if (const auto* s = dim_of("vision.cls_token")) {
    o.vision_embed_dim = (*s)[2];
    o.vision_num_blocks = blocks("vision");
    const auto* w = find_shape(shapes, pre + "vision.rgbt_stem.proj.1.weight");
    const auto* pos = dim_of("vision.pos_embedding_helper.pos_embed");
    if (w && w->size() == 5) {
      o.kernel_size = {(*w)[2], (*w)[3], (*w)[4]};
      const int64_t spatial = (o.image_size / (*w)[3]) * (o.image_size / (*w)[4]);
      if (pos && spatial > 0) o.video_frames = (*w)[2] * (((*pos)[1] - 1) / spatial);
    }
  }
  if (const auto* s = find_shape(shapes, pre + "text.token_embedding.weight"); s && s->size() == 2) {
    o.text_vocab_size = (*s)[0];
    o.text_embed_dim = (*s)[1];
    o.text_num_blocks = blocks("text");
    if (const auto* pos = dim_of("text.pos_embed")) o.text_context_length = (*pos)[1];
  }
  if (const auto* s = dim_of("audio.cls_token")) {
    o.audio_embed_dim = (*s)[2];
    o.audio_num_blocks = blocks("audio");
    if (const auto* w = find_shape(shapes, pre + "audio.rgbt_stem.proj.weight"); w && w->size() == 4) {
      o.audio_kernel_size = (*w)[2];
    }
  }
  if (const auto* s = dim_of("depth.cls_token")) {
    o.depth_embed_dim = (*s)[2];
    o.depth_num_blocks = blocks("depth");
    if (const auto* w = find_shape(shapes, pre + "depth.depth_stem.proj.weight"); w && w->size() == 4) {
      o.depth_kernel_size = (*w)[2];
    }
  }
  if (const auto* s = dim_of("thermal.cls_token")) {
    o.thermal_embed_dim = (*s)[2];
    o.thermal_num_blocks = blocks("thermal");
    if (const auto* w = find_shape(shapes, pre + "thermal.rgbt_stem.proj.weight"); w && w->size() == 4) {
      o.thermal_kernel_size = (*w)[2];
    }
  }
  if (const auto* s = dim_of("imu.cls_token")) {
    o.imu_embed_dim = (*s)[2];
    o.imu_num_blocks = blocks("imu");
  }
  for (const auto& m : o.modalities) {
    const std::string name = "modality_heads." + m +
                             (m == "text"  ? ".proj.1.weight"
                              : m == "imu" ? ".3.weight"
                                           : ".2.weight");
    if (const auto* w = find_shape(shapes, name); w && w->size() == 2) {
      o.out_embed_dim = (*w)[0];
      break;
    }
  }
  if (o.modalities.empty()) {
    throw_input_error("bad_config",
                      "no ImageBind modality found in the weights (no modality_preprocessors.<m>.cls_token "
                      "or text token_embedding)");
  }
  o.validate();
  return o;
}

ImageBindOptions ImageBindOptions::from_weights(const ImageBindShapeMap& shapes) {
  return from_weights(shapes, ImageBindOptions());
}

ImageBindOptions ImageBindOptions::from_weights_file(const std::string& path) {
  return from_weights_file(path, ImageBindOptions());
}

ImageBindOptions ImageBindOptions::from_weights_file(const std::string& path, const ImageBindOptions& base) {
  auto checkpoint = SafeTensorsCheckpoint::open(path);
  ImageBindShapeMap shapes;
  for (const auto& record : checkpoint->records()) shapes[record.name] = record.shape;
  return from_weights(shapes, base);
}

LearnableLogitScalingImpl::LearnableLogitScalingImpl(double logit_scale_init, bool learnable, double max_scale)
    : max_logit_scale(max_scale) {
  auto value = torch::ones({}) * std::log(logit_scale_init);
  log_logit_scale =
      learnable ? register_parameter("log_logit_scale", value) : register_buffer("log_logit_scale", value);
}

at::Tensor LearnableLogitScalingImpl::forward(const at::Tensor& x) {
  return log_logit_scale.exp().clamp_max(max_logit_scale) * x;
}

namespace {

ImageBindRGBDTPreprocessor make_patch_preprocessor(const ImageBindOptions& o, const std::string& m) {
  if (m == "vision") {
    return ImageBindRGBDTPreprocessor(m, "rgbt_stem",
                                      ImageBindPatchStemImpl::video(3, o.vision_embed_dim, o.kernel_size),
                                      std::vector<int64_t>{3, o.video_frames, o.image_size, o.image_size});
  }
  if (m == "audio") {
    return ImageBindRGBDTPreprocessor(
        m, "rgbt_stem", ImageBindPatchStemImpl::image(1, o.audio_embed_dim, o.audio_kernel_size, o.audio_stride),
        std::vector<int64_t>{1, o.audio_num_mel_bins, o.audio_target_len});
  }
  const bool depth = m == "depth";
  const int64_t dim = depth ? o.depth_embed_dim : o.thermal_embed_dim;
  const int64_t kernel = depth ? o.depth_kernel_size : o.thermal_kernel_size;
  return ImageBindRGBDTPreprocessor(m, depth ? "depth_stem" : "rgbt_stem",
                                    ImageBindPatchStemImpl::image(1, dim, kernel, kernel),
                                    std::vector<int64_t>{1, o.depth_image_size, o.depth_image_size});
}

// The fixed logit scale each modality's postprocessor starts from (text's is learned).
double logit_scale_init(const std::string& m) {
  if (m == "text") return 1.0 / 0.07;
  if (m == "audio") return 20.0;
  if (m == "thermal") return 10.0;
  return 5.0;  // depth, imu
}

}  // namespace

ImageBindModelImpl::ImageBindModelImpl(const ImageBindOptions& o) : options_(o) {
  o.validate();
  modality_preprocessors = register_module("modality_preprocessors", std::make_shared<torch::nn::Module>());
  modality_trunks = register_module("modality_trunks", std::make_shared<torch::nn::Module>());
  modality_heads = register_module("modality_heads", std::make_shared<torch::nn::Module>());
  modality_postprocessors = register_module("modality_postprocessors", std::make_shared<torch::nn::Module>());
  for (const auto& m : imagebind_modalities()) {
    if (!o.has(m)) continue;
    const TrunkSizes sizes = trunk_sizes(o, m);
    if (m == "text") {
      text_preprocessor = ImageBindTextPreprocessor(o.text_vocab_size, o.text_context_length, sizes.dim);
      modality_preprocessors->register_module(m, text_preprocessor);
    } else if (m == "imu") {
      imu_preprocessor = ImageBindIMUPreprocessor(o.imu_channels, o.imu_samples, 8, sizes.dim);
      modality_preprocessors->register_module(m, imu_preprocessor);
    } else {
      auto pre = modality_preprocessors->register_module(m, make_patch_preprocessor(o, m));
      if (m == "vision") vision_preprocessor = pre;
      if (m == "audio") audio_preprocessor = pre;
      if (m == "depth") depth_preprocessor = pre;
      if (m == "thermal") thermal_preprocessor = pre;
    }
    ImageBindTrunkOptions trunk;
    trunk.embed_dim = sizes.dim;
    trunk.num_blocks = sizes.blocks;
    trunk.num_heads = sizes.heads;
    trunk.pre_transformer_ln = m == "vision";
    trunk.add_bias_kv = m != "vision" && m != "text";
    trunks.emplace(m, modality_trunks->register_module(m, ImageBindTransformer(trunk)));

    ImageBindHead head;
    head.norm = torch::nn::LayerNorm(torch::nn::LayerNormOptions({sizes.dim}).eps(1e-6));
    head.proj = torch::nn::Linear(torch::nn::LinearOptions(sizes.dim, o.out_embed_dim).bias(false));
    if (m == "text") {
      // SelectEOSAndProject(proj = Sequential(LayerNorm, Linear)).
      auto select_eos = std::make_shared<torch::nn::Module>();
      select_eos->register_module("proj", torch::nn::Sequential(head.norm, head.proj));
      modality_heads->register_module(m, select_eos);
    } else if (m == "imu") {
      // Sequential(LayerNorm, SelectElement(0), Dropout(0.5), Linear): the middle slots hold no tensors.
      modality_heads->register_module(
          m, torch::nn::Sequential(head.norm, torch::nn::Identity(), torch::nn::Identity(), head.proj));
    } else {
      modality_heads->register_module(m, torch::nn::Sequential(head.norm, torch::nn::Identity(), head.proj));
    }
    heads[m] = head;

    if (m != "vision") {  // vision's postprocessor is Normalize alone
      LearnableLogitScaling scaling(logit_scale_init(m), /*learnable=*/m == "text");
      // Sequential(Normalize, LearnableLogitScaling).
      modality_postprocessors->register_module(m, torch::nn::Sequential(torch::nn::Identity(), scaling));
      logit_scales.emplace(m, scaling);
    }
  }
}

void ImageBindModelImpl::check_modality(const std::string& modality) const {
  if (options_.has(modality)) return;
  if (std::count(imagebind_modalities().begin(), imagebind_modalities().end(), modality)) {
    throw_input_error("modality_not_built", "this ImageBind model was built without the " + modality +
                                                " modality (ImageBindOptions::modalities)");
  }
  throw_input_error("unknown_modality", "unknown ImageBind modality \"" + modality + "\"" +
                                            did_you_mean(modality, imagebind_modalities()) +
                                            " (vision, text, audio, depth, thermal, imu)");
}

at::Tensor ImageBindModelImpl::trunk_output(const std::string& m, const at::Tensor& input) {
  check_modality(m);
  if (!input.defined()) throw_input_error("bad_shape", "ImageBind " + m + ": no input tensor");
  if (m == "text") return trunks.at(m)->forward(text_preprocessor(input), text_preprocessor->mask);
  at::Tensor tokens;
  if (m == "vision") tokens = vision_preprocessor(input.to(at::kFloat));
  if (m == "audio") tokens = audio_preprocessor(input.to(at::kFloat));
  if (m == "depth") tokens = depth_preprocessor(input.to(at::kFloat));
  if (m == "thermal") tokens = thermal_preprocessor(input.to(at::kFloat));
  if (m == "imu") tokens = imu_preprocessor(input.to(at::kFloat));
  return trunks.at(m)->forward(tokens);
}

at::Tensor ImageBindModelImpl::embed_items(const std::string& m, const at::Tensor& items) {
  auto tokens = trunk_output(m, items);
  at::Tensor pooled;
  if (m == "text") {
    auto rows = torch::arange(tokens.size(0), items.options().dtype(at::kLong));
    pooled = tokens.index({rows, ImageBindTextPreprocessorImpl::eot_positions(items)});
  } else {
    pooled = tokens.select(1, 0);  // the class token; the head's LayerNorm acts per token
  }
  ImageBindHead& head = heads.at(m);
  auto embedding = torch::nn::functional::normalize(head.proj(head.norm(pooled)),
                                                    torch::nn::functional::NormalizeFuncOptions().p(2).dim(-1));
  if (m == "vision" || (m == "audio" && !options_.audio_logit_scale)) return embedding;
  return logit_scales.at(m)(embedding);
}

at::Tensor ImageBindModelImpl::embed(const std::string& modality, const at::Tensor& input) {
  check_modality(modality);
  if (!input.defined()) throw_input_error("bad_shape", "ImageBind " + modality + ": no input tensor");
  if (input.dim() < 5) return embed_items(modality, input);
  // [B, S, ...]: S clips per item, averaged after the postprocessor.
  const int64_t b = input.size(0), s = input.size(1);
  std::vector<int64_t> items = {b * s};
  for (int64_t d = 2; d < input.dim(); ++d) items.push_back(input.size(d));
  return embed_items(modality, input.reshape(items)).view({b, s, -1}).mean(1);
}

std::map<std::string, at::Tensor> ImageBindModelImpl::forward(const std::map<std::string, at::Tensor>& inputs) {
  std::map<std::string, at::Tensor> outputs;
  for (const auto& [modality, value] : inputs) outputs[modality] = embed(modality, value);
  return outputs;
}

LoadOptions imagebind_load_options(const ImageBindOptions& options, LoadOptions base) {
  for (const auto& m : imagebind_modalities()) {
    if (options.has(m)) continue;
    for (const char* part :
         {"modality_preprocessors.", "modality_trunks.", "modality_heads.", "modality_postprocessors."}) {
      base.ignored_unexpected.push_back(std::string(part) + m + ".*");
    }
  }
  return base;
}

LoadReport load_imagebind_weights(ImageBindModelImpl& model, const std::string& path, LoadOptions options) {
  if (options.source.empty()) options.source = path;
  return load_weights(model, path, imagebind_load_options(model.options(), std::move(options)));
}

at::Tensor imagebind_tokenize(const ClipTokenizer& tokenizer, const std::vector<std::string>& texts,
                              int64_t context_length) {
  if (context_length < 2) {
    throw_input_error("bad_option", "ImageBind text: context_length must hold at least the start and end tokens");
  }
  auto ids = torch::zeros({static_cast<int64_t>(texts.size()), context_length}, torch::kLong);
  auto rows = ids.accessor<int64_t, 2>();
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> tokens = {*tokenizer.bos_id()};
    const auto body = tokenizer.encode(texts[i]);
    tokens.insert(tokens.end(), body.begin(), body.end());
    if (static_cast<int64_t>(tokens.size()) > context_length - 1) tokens.resize(context_length - 1);
    tokens.push_back(*tokenizer.eos_id());
    for (size_t j = 0; j < tokens.size(); ++j) rows[i][j] = tokens[j];
  }
  return ids;
}

}  // namespace a2a
