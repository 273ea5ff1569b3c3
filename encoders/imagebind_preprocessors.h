#pragma once
// ImageBind's modality preprocessors (imagebind/models/multimodal_preprocessors.py): patch stems, class
// token and learned positional embedding per modality, named like the checkpoint under
// `modality_preprocessors.<modality>.` (rgbt_stem.proj.1.weight, pos_embedding_helper.pos_embed, ...).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace a2a {

// PatchEmbedGeneric: `proj` (the patch projection) and an optional `norm_layer` (LayerNorm, eps 1e-5)
// on the tokens. The vision stem's proj is Sequential(PadIm2Video, Conv3d), hence `proj.1.weight`;
// the other stems hold one layer as `proj` itself.
class ImageBindPatchStemImpl : public torch::nn::Module {
 public:
  // Conv3d(in_channels, embed_dim, kernel = stride, no bias) behind the PadIm2Video slot (vision).
  static std::shared_ptr<ImageBindPatchStemImpl> video(int64_t in_channels, int64_t embed_dim,
                                                       const std::vector<int64_t>& kernel);
  // Conv2d(in_channels, embed_dim, kernel, stride, no bias) + LayerNorm (audio, depth, thermal).
  static std::shared_ptr<ImageBindPatchStemImpl> image(int64_t in_channels, int64_t embed_dim, int64_t kernel,
                                                       int64_t stride);
  // Linear(in_features, embed_dim, no bias) + LayerNorm on already patchified input (IMU).
  static std::shared_ptr<ImageBindPatchStemImpl> linear(int64_t in_features, int64_t embed_dim);

  // Conv stems: [B, C, (T,) H, W] -> tokens [B, patches, D]; the linear stem: [B, L, F] -> [B, L, D].
  at::Tensor forward(const at::Tensor& x);
  // The token grid the stem makes of an input of `input_shape` (without batch), e.g. {1, 16, 16}.
  std::vector<int64_t> patch_layout(const std::vector<int64_t>& input_shape) const;

  torch::nn::Sequential proj_sequence{nullptr};  // vision: "proj" = [PadIm2Video slot, Conv3d]
  torch::nn::Conv3d conv3d{nullptr};
  torch::nn::Conv2d conv2d{nullptr};
  torch::nn::Linear proj_linear{nullptr};
  torch::nn::LayerNorm norm_layer{nullptr};

 private:
  ImageBindPatchStemImpl() = default;
};

// SpatioTemporalPosEmbeddingHelper(learnable=True): pos_embed [1, cls + patches, D].
class ImageBindPosEmbeddingImpl : public torch::nn::Module {
 public:
  ImageBindPosEmbeddingImpl(int64_t num_tokens, int64_t embed_dim);
  at::Tensor pos_embed;
};
TORCH_MODULE(ImageBindPosEmbedding);

// RGBDTPreprocessor and its Audio / Thermal subclasses: tokens = cat(cls_token, stem(x)) + pos_embed.
// Only the size the positional table was made for is accepted (the reference interpolates the table
// for other image sizes; ImageBind's own transforms never produce one).
class ImageBindRGBDTPreprocessorImpl : public torch::nn::Module {
 public:
  // stem_name: "rgbt_stem" (vision, audio, thermal) or "depth_stem"; input_shape: one item without batch
  // ({3, frames, 224, 224}, {1, mel_bins, target_len}, {1, 224, 224}); modality: for messages.
  ImageBindRGBDTPreprocessorImpl(std::string modality, const std::string& stem_name,
                                 std::shared_ptr<ImageBindPatchStemImpl> stem, std::vector<int64_t> input_shape);
  // x [B, ...input_shape] -> tokens [B, 1 + patches, D]. Vision also takes an image [B, 3, H, W], which
  // PadIm2Video(repeat, 2) turns into a two-frame clip first.
  at::Tensor forward(const at::Tensor& x);

  std::string modality;
  std::vector<int64_t> input_shape;
  std::shared_ptr<ImageBindPatchStemImpl> stem;
  at::Tensor cls_token;  // [1, 1, D]
  ImageBindPosEmbedding pos_embedding_helper{nullptr};
};
TORCH_MODULE(ImageBindRGBDTPreprocessor);

// PadIm2Video(pad_type="repeat", ntimes): [B, C, H, W] -> [B, C, ntimes, H, W] (the image repeated); a
// clip [B, C, T, H, W] with T == 1 is repeated the same way, other clips pass unchanged.
at::Tensor pad_image_to_video(const at::Tensor& x, int64_t ntimes);

// TextPreprocessor(causal_masking=True): token_embedding, pos_embed [1, context, D] and the persistent
// buffer `mask` [context, context] (-inf above the diagonal).
class ImageBindTextPreprocessorImpl : public torch::nn::Module {
 public:
  ImageBindTextPreprocessorImpl(int64_t vocab_size, int64_t context_length, int64_t embed_dim);
  // ids [B, context] int64 -> tokens [B, context, D].
  at::Tensor forward(const at::Tensor& ids);
  // The pooling position per row: argmax(ids) (end-of-text is the largest id of CLIP's vocabulary).
  static at::Tensor eot_positions(const at::Tensor& ids);

  torch::nn::Embedding token_embedding{nullptr};
  at::Tensor pos_embed, mask;
};
TORCH_MODULE(ImageBindTextPreprocessor);

// IMUPreprocessor: [B, channels, samples] cut into windows of `kernel_size` samples (all channels of
// one window form one token of channels * kernel_size features), imu_stem, cls_token, pos_embed.
class ImageBindIMUPreprocessorImpl : public torch::nn::Module {
 public:
  ImageBindIMUPreprocessorImpl(int64_t channels, int64_t samples, int64_t kernel_size, int64_t embed_dim);
  at::Tensor forward(const at::Tensor& imu);

  int64_t channels, samples, kernel_size;
  at::Tensor pos_embed, cls_token;
  std::shared_ptr<ImageBindPatchStemImpl> imu_stem;
};
TORCH_MODULE(ImageBindIMUPreprocessor);

}  // namespace a2a
