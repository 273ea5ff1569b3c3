#pragma once
// ImageBind (facebookresearch/ImageBind imagebind/models/imagebind_model.py, ImageBindModel; the
// imagebind_huge checkpoint is the encoder NExT-GPT uses). One embedding space for six modalities:
// vision (images and video clips), text, audio (Kaldi fbank), depth, thermal, IMU. The module tree is
// named like imagebind_huge.pth's state_dict: modality_preprocessors.<m>.*, modality_trunks.<m>.*,
// modality_heads.<m>.*, modality_postprocessors.<m>.1.log_logit_scale.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "encoders/imagebind_preprocessors.h"
#include "encoders/imagebind_transformer.h"
#include "weights/state_dict.h"

namespace a2a {

class ConfigReader;
class ClipTokenizer;

// The modality names of the reference (ModalityType), in its order.
const std::vector<std::string>& imagebind_modalities();

// ImageBindModel's constructor arguments. The checkpoint has no config.json; the defaults are the
// imagebind_huge sizes (the only released checkpoint), which differ from the constructor's own defaults
// in the vision, text and output widths.
struct ImageBindOptions {
  int64_t video_frames = 2;
  std::vector<int64_t> kernel_size = {2, 14, 14};  // vision Conv3d kernel = stride (T, H, W)
  int64_t audio_kernel_size = 16;
  int64_t audio_stride = 10;
  int64_t out_embed_dim = 1024;
  int64_t vision_embed_dim = 1280, vision_num_blocks = 32, vision_num_heads = 16;
  int64_t audio_embed_dim = 768, audio_num_blocks = 12, audio_num_heads = 12;
  int64_t audio_num_mel_bins = 128, audio_target_len = 204;
  int64_t text_embed_dim = 1024, text_num_blocks = 24, text_num_heads = 16;
  int64_t depth_embed_dim = 384, depth_kernel_size = 16, depth_num_blocks = 12, depth_num_heads = 8;
  int64_t thermal_embed_dim = 768, thermal_kernel_size = 16, thermal_num_blocks = 12, thermal_num_heads = 12;
  // imu_kernel_size is accepted but, as in the reference constructor, the IMU windows are always 8 samples.
  int64_t imu_embed_dim = 512, imu_kernel_size = 8, imu_num_blocks = 6, imu_num_heads = 8;
  // Drop-path rates act only in training; kept so a constructor-argument list reads whole.
  double audio_drop_path = 0.1, depth_drop_path = 0.0, thermal_drop_path = 0.0, imu_drop_path = 0.7;

  // Fixed by the reference constructor; only the vocabulary may differ in a checkpoint (the
  // token_embedding table is replaced after construction in the test fixtures).
  int64_t text_vocab_size = 49408;
  int64_t text_context_length = 77;
  int64_t image_size = 224;
  int64_t depth_image_size = 224;  // depth and thermal take [B, 1, 224, 224]
  int64_t imu_channels = 6, imu_samples = 2000;

  // Scale audio embeddings by the fixed logit scale (×20) after normalisation. The official ImageBind
  // (facebookresearch/ImageBind, imagebind_huge.pth) does; NExT-GPT's copy of the model applies only the
  // normalisation to audio, so set this to false to reproduce the embeddings NExT-GPT's projections were
  // trained on (the same imagebind_huge weights).
  bool audio_logit_scale = true;

  // The modalities to build. The weights of the others are skipped by name when loading through
  // load_imagebind_weights (and reported as ignored), never dropped silently.
  std::vector<std::string> modalities = imagebind_modalities();

  // Reads constructor arguments (the keys above; absent keys keep the imagebind_huge values) plus
  // `text_vocab_size`, `audio_logit_scale` and `modalities`. Errors: "bad_config".
  static ImageBindOptions from_config(const ConfigReader& config);
  // Sizes read from a checkpoint's tensor shapes (embedding widths, block counts, output width,
  // vocabulary, kernels, video frames) over `base`. Head counts are not in the tensors: they stay
  // base's, so pass the right ones for a checkpoint that is not imagebind_huge. Only the modalities
  // present in the file are built.
  static ImageBindOptions from_weights(const std::map<std::string, std::vector<int64_t>>& shapes,
                                       const ImageBindOptions& base);
  static ImageBindOptions from_weights(
      const std::map<std::string, std::vector<int64_t>>& shapes);  // over imagebind_huge
  // The same from a safetensors file (or sharded index); only the header is read.
  static ImageBindOptions from_weights_file(const std::string& path, const ImageBindOptions& base);
  static ImageBindOptions from_weights_file(const std::string& path);
  void validate() const;  // "bad_config" naming the first bad value
  bool has(const std::string& modality) const;
};

// LearnableLogitScaling: x * min(exp(log_logit_scale), max_logit_scale). The scale is a parameter when
// learnable (text) and a buffer otherwise; both are in the state_dict.
class LearnableLogitScalingImpl : public torch::nn::Module {
 public:
  LearnableLogitScalingImpl(double logit_scale_init, bool learnable, double max_logit_scale = 100.0);
  at::Tensor forward(const at::Tensor& x);
  double max_logit_scale;
  at::Tensor log_logit_scale;
};
TORCH_MODULE(LearnableLogitScaling);

// A head of one modality: LayerNorm(eps 1e-6) and a Linear without bias, registered at the reference's
// Sequential indices (vision/audio/depth/thermal: 0 and 2; imu: 0 and 3; text: proj.0 and proj.1).
struct ImageBindHead {
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear proj{nullptr};
};

class ImageBindModelImpl : public torch::nn::Module {
 public:
  explicit ImageBindModelImpl(const ImageBindOptions& options);

  // The reference forward: one embedding [B, out_embed_dim] per modality given. An input of 5 or more
  // dims is [B, S, ...] (S clips: audio [B, S, 1, mel, frames], video [B, S, 3, T, H, W]); each clip is
  // embedded and the S embeddings are averaged after the postprocessor (not normalised again).
  // Vision takes images [B, 3, H, W] (repeated to 2 frames), 5-D [B, S, 3, H, W] image sets and 6-D clips.
  std::map<std::string, at::Tensor> forward(const std::map<std::string, at::Tensor>& inputs);
  at::Tensor embed(const std::string& modality, const at::Tensor& input);
  // Preprocessor and trunk for items without a clip dimension: tokens [N, L, D] before the head.
  at::Tensor trunk_output(const std::string& modality, const at::Tensor& input);

  const ImageBindOptions& options() const { return options_; }

  std::shared_ptr<torch::nn::Module> modality_preprocessors, modality_trunks, modality_heads, modality_postprocessors;
  ImageBindRGBDTPreprocessor vision_preprocessor{nullptr}, audio_preprocessor{nullptr}, depth_preprocessor{nullptr},
      thermal_preprocessor{nullptr};
  ImageBindTextPreprocessor text_preprocessor{nullptr};
  ImageBindIMUPreprocessor imu_preprocessor{nullptr};
  std::map<std::string, ImageBindTransformer> trunks;
  std::map<std::string, ImageBindHead> heads;
  std::map<std::string, LearnableLogitScaling> logit_scales;  // every modality but vision

 private:
  void check_modality(const std::string& modality) const;
  at::Tensor embed_items(const std::string& modality, const at::Tensor& items);
  ImageBindOptions options_;
};
TORCH_MODULE(ImageBindModel);

// LoadOptions that skip, by name, the keys of the modalities `options` leaves out.
LoadOptions imagebind_load_options(const ImageBindOptions& options, LoadOptions base = {});
// Strict loading of an ImageBind state_dict from safetensors (file or sharded index) through load_weights.
LoadReport load_imagebind_weights(ImageBindModelImpl& model, const std::string& path, LoadOptions options = {});

// ImageBind's text input: [start] + BPE ids, cut so that the end-of-text token always takes the last
// slot when the text is too long (upstream's SimpleTokenizer since 1125e1e), padded with 0 to
// context_length. texts.size() rows [N, context_length] int64.
at::Tensor imagebind_tokenize(const ClipTokenizer& tokenizer, const std::vector<std::string>& texts,
                              int64_t context_length = 77);

}  // namespace a2a
