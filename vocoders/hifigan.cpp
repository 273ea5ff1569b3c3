#include "vocoders/hifigan.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "nn/dtype.h"
#include "weights/hf_layout.h"

namespace a2a {

SpeechT5HifiGanConfig SpeechT5HifiGanConfig::from_json(const nlohmann::json& json) {
  return from_config(ConfigReader(json, "SpeechT5HifiGan config"));
}

SpeechT5HifiGanConfig SpeechT5HifiGanConfig::from_config(const ConfigReader& r) {
  SpeechT5HifiGanConfig c;
  r.read("model_in_dim", c.model_in_dim);
  r.read("sampling_rate", c.sampling_rate);
  r.read("upsample_initial_channel", c.upsample_initial_channel);
  r.read("upsample_rates", c.upsample_rates);
  r.read("upsample_kernel_sizes", c.upsample_kernel_sizes);
  r.read("resblock_kernel_sizes", c.resblock_kernel_sizes);
  r.read("resblock_dilation_sizes", c.resblock_dilation_sizes);
  r.read("initializer_range", c.initializer_range);
  r.read("leaky_relu_slope", c.leaky_relu_slope);
  r.read("normalize_before", c.normalize_before);

  std::vector<std::string> problems;
  if (c.model_in_dim <= 0) problems.push_back("model_in_dim must be positive");
  if (c.sampling_rate <= 0) problems.push_back("sampling_rate must be positive");
  if (c.upsample_rates.empty()) problems.push_back("upsample_rates must not be empty");
  if (c.upsample_rates.size() != c.upsample_kernel_sizes.size())
    problems.push_back("upsample_rates and upsample_kernel_sizes must have the same length");
  if (c.resblock_kernel_sizes.empty()) problems.push_back("resblock_kernel_sizes must not be empty");
  if (c.resblock_kernel_sizes.size() != c.resblock_dilation_sizes.size())
    problems.push_back("resblock_kernel_sizes and resblock_dilation_sizes must have the same length");
  for (int64_t rate : c.upsample_rates)
    if (rate <= 0) problems.push_back("upsample_rates must be positive");
  // Each upsampling stage halves the channels, so the initial width must survive every halving.
  if (c.upsample_initial_channel <= 0 ||
      (c.upsample_rates.size() < 63 && (c.upsample_initial_channel >> c.upsample_rates.size()) == 0))
    problems.push_back("upsample_initial_channel " + std::to_string(c.upsample_initial_channel) + " is too small for " +
                       std::to_string(c.upsample_rates.size()) + " upsampling stages");
  if (!problems.empty()) {
    std::string message = "SpeechT5HifiGan config:";
    for (const auto& p : problems) message += " " + p + ";";
    message.pop_back();
    throw_input_error("bad_config", message);
  }
  return c;
}

int64_t SpeechT5HifiGanConfig::hop_length() const {
  int64_t product = 1;
  for (int64_t rate : upsample_rates) product *= rate;
  return product;
}

int64_t SpeechT5HifiGanConfig::output_length(int64_t frames) const {
  int64_t length = frames;
  for (size_t i = 0; i < upsample_rates.size(); ++i) {
    const int64_t rate = upsample_rates[i], kernel = upsample_kernel_sizes[i];
    length = (length - 1) * rate - 2 * ((kernel - rate) / 2) + kernel;
  }
  return length;
}

namespace {

// Same-length padding of a dilated convolution (odd kernels).
int64_t same_padding(int64_t kernel_size, int64_t dilation) { return (kernel_size * dilation - dilation) / 2; }

}  // namespace

HifiGanResidualBlockImpl::HifiGanResidualBlockImpl(int64_t channels, int64_t kernel_size,
                                                   const std::vector<int64_t>& dilations, double slope)
    : leaky_relu_slope(slope) {
  convs1 = register_module("convs1", torch::nn::ModuleList());
  convs2 = register_module("convs2", torch::nn::ModuleList());
  for (int64_t dilation : dilations) {
    convs1->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, channels, kernel_size)
                                            .dilation(dilation)
                                            .padding(same_padding(kernel_size, dilation))));
    convs2->push_back(torch::nn::Conv1d(
        torch::nn::Conv1dOptions(channels, channels, kernel_size).padding(same_padding(kernel_size, 1))));
  }
}

at::Tensor HifiGanResidualBlockImpl::forward(const at::Tensor& hidden) {
  at::Tensor h = hidden;
  for (size_t i = 0; i < convs1->size(); ++i) {
    at::Tensor x = torch::leaky_relu(h, leaky_relu_slope);
    x = convs1[i]->as<torch::nn::Conv1dImpl>()->forward(x);
    x = torch::leaky_relu(x, leaky_relu_slope);
    x = convs2[i]->as<torch::nn::Conv1dImpl>()->forward(x);
    h = x + h;
  }
  return h;
}

SpeechT5HifiGanImpl::SpeechT5HifiGanImpl(const SpeechT5HifiGanConfig& config) : config_(config) {
  // Registered whatever normalize_before says: checkpoints always carry them.
  mean = register_buffer("mean", torch::zeros({config.model_in_dim}));
  scale = register_buffer("scale", torch::ones({config.model_in_dim}));
  conv_pre = register_module(
      "conv_pre",
      torch::nn::Conv1d(torch::nn::Conv1dOptions(config.model_in_dim, config.upsample_initial_channel, 7).padding(3)));
  upsampler = register_module("upsampler", torch::nn::ModuleList());
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  int64_t channels = config.upsample_initial_channel;
  for (size_t i = 0; i < config.upsample_rates.size(); ++i) {
    const int64_t rate = config.upsample_rates[i], kernel = config.upsample_kernel_sizes[i];
    upsampler->push_back(torch::nn::ConvTranspose1d(
        torch::nn::ConvTranspose1dOptions(channels, channels / 2, kernel).stride(rate).padding((kernel - rate) / 2)));
    channels /= 2;
  }
  channels = config.upsample_initial_channel;
  for (size_t i = 0; i < config.upsample_rates.size(); ++i) {
    channels /= 2;
    for (size_t k = 0; k < config.resblock_kernel_sizes.size(); ++k) {
      resblocks->push_back(HifiGanResidualBlock(channels, config.resblock_kernel_sizes[k],
                                                config.resblock_dilation_sizes[k], config.leaky_relu_slope));
    }
  }
  conv_post = register_module("conv_post", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, 1, 7).padding(3)));
}

at::Tensor SpeechT5HifiGanImpl::forward(const at::Tensor& spectrogram) {
  const bool batched = spectrogram.dim() == 3;
  if (!batched && spectrogram.dim() != 2) {
    throw_input_error("bad_shape", "SpeechT5HifiGan: spectrogram " + c10::str(spectrogram.sizes()) +
                                       " must be [B, frames, " + std::to_string(config_.model_in_dim) + "]");
  }
  if (spectrogram.size(-1) != config_.model_in_dim) {
    throw_input_error("bad_shape", "SpeechT5HifiGan: spectrogram " + c10::str(spectrogram.sizes()) + " has " +
                                       std::to_string(spectrogram.size(-1)) + " mel bins, the model takes " +
                                       std::to_string(config_.model_in_dim) + " (layout [B, frames, mel])");
  }
  at::Tensor x = spectrogram;
  if (config_.normalize_before) x = (x - mean) / scale;
  if (!batched) x = x.unsqueeze(0);
  at::Tensor h = conv_pre(x.transpose(2, 1));
  const size_t kernels = config_.resblock_kernel_sizes.size();
  for (size_t i = 0; i < upsampler->size(); ++i) {
    h = torch::leaky_relu(h, config_.leaky_relu_slope);
    h = conv_transpose_forward(*upsampler[i]->as<torch::nn::ConvTranspose1dImpl>(), h);
    at::Tensor sum = resblocks[i * kernels]->as<HifiGanResidualBlockImpl>()->forward(h);
    for (size_t j = 1; j < kernels; ++j)
      sum = sum + resblocks[i * kernels + j]->as<HifiGanResidualBlockImpl>()->forward(h);
    h = sum / static_cast<double>(kernels);
  }
  // The reference calls leaky_relu without a slope here: torch's default 0.01, not the config's.
  h = torch::leaky_relu(h, 0.01);
  h = torch::tanh(conv_post(h));
  at::Tensor waveform = h.squeeze(1);
  return batched ? waveform : waveform.squeeze(0);
}

}  // namespace a2a
