#include "encoders/imagebind_preprocessors.h"

#include <torch/torch.h>

#include <limits>

#include "base/error.h"

namespace a2a {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) { return c10::str(at::IntArrayRef(shape)); }

// Conv output length with stride = kernel (or the given stride) and no padding.
int64_t conv_length(int64_t input, int64_t kernel, int64_t stride) {
  return input < kernel ? 0 : (input - kernel) / stride + 1;
}

}  // namespace

std::shared_ptr<ImageBindPatchStemImpl> ImageBindPatchStemImpl::video(int64_t in_channels, int64_t embed_dim,
                                                                      const std::vector<int64_t>& kernel) {
  std::shared_ptr<ImageBindPatchStemImpl> stem(new ImageBindPatchStemImpl());
  if (kernel.size() != 3) throw_input_error("bad_config", "ImageBind vision: kernel_size needs 3 values (T, H, W)");
  const torch::ExpandingArray<3> k(at::IntArrayRef{kernel});
  stem->conv3d = torch::nn::Conv3d(torch::nn::Conv3dOptions(in_channels, embed_dim, k).stride(k).bias(false));
  // Index 0 is PadIm2Video, which has no parameters; forward applies it before the sequence.
  stem->proj_sequence = stem->register_module("proj", torch::nn::Sequential(torch::nn::Identity(), stem->conv3d));
  return stem;
}

std::shared_ptr<ImageBindPatchStemImpl> ImageBindPatchStemImpl::image(int64_t in_channels, int64_t embed_dim,
                                                                      int64_t kernel, int64_t stride) {
  std::shared_ptr<ImageBindPatchStemImpl> stem(new ImageBindPatchStemImpl());
  stem->conv2d = stem->register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, embed_dim, kernel).stride(stride).bias(false)));
  stem->norm_layer =
      stem->register_module("norm_layer", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim})));
  return stem;
}

std::shared_ptr<ImageBindPatchStemImpl> ImageBindPatchStemImpl::linear(int64_t in_features, int64_t embed_dim) {
  std::shared_ptr<ImageBindPatchStemImpl> stem(new ImageBindPatchStemImpl());
  stem->proj_linear =
      stem->register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(in_features, embed_dim).bias(false)));
  stem->norm_layer =
      stem->register_module("norm_layer", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim})));
  return stem;
}

at::Tensor ImageBindPatchStemImpl::forward(const at::Tensor& x) {
  at::Tensor tokens;
  if (conv3d) {
    tokens = conv3d(x).flatten(2).transpose(1, 2);
  } else if (conv2d) {
    tokens = conv2d(x).flatten(2).transpose(1, 2);
  } else {
    tokens = proj_linear(x);
  }
  return norm_layer ? norm_layer(tokens) : tokens;
}

std::vector<int64_t> ImageBindPatchStemImpl::patch_layout(const std::vector<int64_t>& input_shape) const {
  std::vector<int64_t> layout;
  if (conv3d) {
    const auto& o = conv3d->options;
    for (size_t i = 0; i < 3; ++i) {
      layout.push_back(conv_length(input_shape.at(i + 1), (*o.kernel_size())[i], (*o.stride())[i]));
    }
  } else if (conv2d) {
    const auto& o = conv2d->options;
    for (size_t i = 0; i < 2; ++i) {
      layout.push_back(conv_length(input_shape.at(i + 1), (*o.kernel_size())[i], (*o.stride())[i]));
    }
  }
  return layout;
}

ImageBindPosEmbeddingImpl::ImageBindPosEmbeddingImpl(int64_t num_tokens, int64_t embed_dim) {
  pos_embed = register_parameter("pos_embed", torch::zeros({1, num_tokens, embed_dim}));
}

at::Tensor pad_image_to_video(const at::Tensor& x, int64_t ntimes) {
  at::Tensor clip = x.dim() == 4 ? x.unsqueeze(2) : x;
  if (clip.dim() != 5) {
    throw_input_error(
        "bad_shape",
        "ImageBind vision input must be an image [B, 3, H, W] or a clip [B, 3, T, H, W], got " + c10::str(x.sizes()));
  }
  return clip.size(2) == 1 ? clip.repeat({1, 1, ntimes, 1, 1}) : clip;
}

ImageBindRGBDTPreprocessorImpl::ImageBindRGBDTPreprocessorImpl(std::string name, const std::string& stem_name,
                                                               std::shared_ptr<ImageBindPatchStemImpl> patch_stem,
                                                               std::vector<int64_t> shape)
    : modality(std::move(name)), input_shape(std::move(shape)), stem(std::move(patch_stem)) {
  register_module(stem_name, stem);
  int64_t patches = 1;
  for (int64_t n : stem->patch_layout(input_shape)) patches *= n;
  if (patches <= 0) {
    throw_input_error("bad_config", "ImageBind " + modality + ": the stem's kernel is larger than the input " +
                                        shape_text(input_shape));
  }
  const int64_t dim = stem->conv3d ? stem->conv3d->options.out_channels() : stem->conv2d->options.out_channels();
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, dim}));
  pos_embedding_helper = register_module("pos_embedding_helper", ImageBindPosEmbedding(1 + patches, dim));
}

at::Tensor ImageBindRGBDTPreprocessorImpl::forward(const at::Tensor& x) {
  // The vision stem's first slot is PadIm2Video(repeat, ntimes=2), fixed by the reference constructor.
  const at::Tensor input = stem->conv3d ? pad_image_to_video(x, 2) : x;
  std::vector<int64_t> expected = {-1};
  expected.insert(expected.end(), input_shape.begin(), input_shape.end());
  bool ok = input.dim() == static_cast<int64_t>(expected.size());
  for (size_t i = 1; ok && i < expected.size(); ++i) ok = input.size(static_cast<int64_t>(i)) == expected[i];
  if (!ok) {
    throw_input_error("bad_shape", "ImageBind " + modality + " input must be [batch, " +
                                       shape_text(input_shape).substr(1) + ", got " + c10::str(x.sizes()));
  }
  auto tokens = stem->forward(input);
  tokens = torch::cat({cls_token.expand({tokens.size(0), -1, -1}), tokens}, 1);
  return tokens + pos_embedding_helper->pos_embed;
}

ImageBindTextPreprocessorImpl::ImageBindTextPreprocessorImpl(int64_t vocab_size, int64_t context_length,
                                                             int64_t embed_dim) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(vocab_size, embed_dim));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, context_length, embed_dim}));
  mask = register_buffer(
      "mask", torch::full({context_length, context_length}, -std::numeric_limits<float>::infinity()).triu(1));
}

at::Tensor ImageBindTextPreprocessorImpl::forward(const at::Tensor& ids) {
  const int64_t context = pos_embed.size(1), vocab = token_embedding->weight.size(0);
  if (ids.dim() != 2 || ids.size(1) != context || !(ids.scalar_type() == at::kLong || ids.scalar_type() == at::kInt)) {
    throw_input_error("bad_shape", "ImageBind text input must be integer ids [batch, " + std::to_string(context) +
                                       "], got " + c10::str(ids.sizes()) + " " +
                                       std::string(c10::toString(ids.scalar_type())));
  }
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab) {
      throw_input_error("token_out_of_range", "ImageBind text: token id " + std::to_string(lo < 0 ? lo : hi) +
                                                  " outside the vocabulary of " + std::to_string(vocab));
    }
  }
  return token_embedding(ids.to(at::kLong)) + pos_embed;
}

at::Tensor ImageBindTextPreprocessorImpl::eot_positions(const at::Tensor& ids) { return ids.argmax(-1); }

ImageBindIMUPreprocessorImpl::ImageBindIMUPreprocessorImpl(int64_t imu_channels, int64_t imu_samples, int64_t kernel,
                                                           int64_t embed_dim)
    : channels(imu_channels), samples(imu_samples), kernel_size(kernel) {
  if (kernel <= 0 || imu_samples < kernel) {
    throw_input_error("bad_config", "ImageBind imu: the window of " + std::to_string(kernel) +
                                        " samples must fit in the " + std::to_string(imu_samples) + " samples");
  }
  pos_embed = register_parameter("pos_embed", torch::zeros({1, imu_samples / kernel + 1, embed_dim}));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, embed_dim}));
  imu_stem = ImageBindPatchStemImpl::linear(imu_channels * kernel, embed_dim);
  register_module("imu_stem", imu_stem);
}

at::Tensor ImageBindIMUPreprocessorImpl::forward(const at::Tensor& imu) {
  if (imu.dim() != 3 || imu.size(1) != channels || imu.size(2) != samples) {
    throw_input_error("bad_shape", "ImageBind imu input must be [batch, " + std::to_string(channels) + ", " +
                                       std::to_string(samples) + "], got " + c10::str(imu.sizes()));
  }
  // [B, C, S] -> [B, windows, C, kernel] -> [B, windows, C * kernel]
  auto windows = imu.unfold(-1, kernel_size, kernel_size).permute({0, 2, 1, 3});
  auto tokens = imu_stem->forward(windows.reshape({imu.size(0), windows.size(1), -1}));
  tokens = torch::cat({cls_token.expand({tokens.size(0), -1, -1}), tokens}, 1);
  return tokens + pos_embed;
}

}  // namespace a2a
