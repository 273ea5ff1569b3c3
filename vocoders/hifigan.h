#pragma once
// HiFi-GAN generator as transformers 4.43 implements it for SpeechT5 and AudioLDM (SpeechT5HifiGan):
// log-mel frames [B, frames, model_in_dim] -> waveform of about frames · prod(upsample_rates) samples
// (output_length gives it exactly). Named like the
// checkpoint: conv_pre, upsampler.N, resblocks.M.convs1.K, conv_post, and the mean / scale buffers.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <vector>

namespace a2a {

class ConfigReader;

// Mirrors SpeechT5HifiGanConfig (transformers 4.43); defaults are the constructor's.
struct SpeechT5HifiGanConfig {
  int64_t model_in_dim = 80;
  int64_t sampling_rate = 16000;
  int64_t upsample_initial_channel = 512;
  std::vector<int64_t> upsample_rates = {4, 4, 4, 4};
  std::vector<int64_t> upsample_kernel_sizes = {8, 8, 8, 8};
  std::vector<int64_t> resblock_kernel_sizes = {3, 7, 11};
  std::vector<std::vector<int64_t>> resblock_dilation_sizes = {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}};
  double initializer_range = 0.01;
  double leaky_relu_slope = 0.1;
  bool normalize_before = true;

  // Reads a transformers config.json; throws a2a::Error ("bad_config") naming every inconsistent field.
  static SpeechT5HifiGanConfig from_json(const nlohmann::json& config);
  // The same from a reader whose errors name the file (not a from_json overload: a braced JSON
  // literal argument would be ambiguous between the two).
  static SpeechT5HifiGanConfig from_config(const ConfigReader& config);
  // Waveform samples per mel frame: prod(upsample_rates).
  int64_t hop_length() const;
  // Samples produced from `frames` mel frames. Each transposed convolution gives (L − 1)·rate −
  // 2·((kernel − rate) / 2) + kernel, which is L·rate only when kernel − rate is even: AudioLDM's first
  // stage (kernel 16, rate 5) adds one sample, so its vocoder returns 160·frames + 32 and the pipeline
  // cuts the waveform to the requested duration.
  int64_t output_length(int64_t frames) const;
};

// Multi-receptive-field residual block: for each dilation, x + conv2(lrelu(conv1(lrelu(x)))).
class HifiGanResidualBlockImpl : public torch::nn::Module {
 public:
  HifiGanResidualBlockImpl(int64_t channels, int64_t kernel_size, const std::vector<int64_t>& dilations,
                           double leaky_relu_slope);
  at::Tensor forward(const at::Tensor& hidden);

  double leaky_relu_slope;
  torch::nn::ModuleList convs1{nullptr}, convs2{nullptr};
};
TORCH_MODULE(HifiGanResidualBlock);

class SpeechT5HifiGanImpl : public torch::nn::Module {
 public:
  explicit SpeechT5HifiGanImpl(const SpeechT5HifiGanConfig& config);
  // spectrogram [B, frames, model_in_dim] (or [frames, model_in_dim]) -> [B, output_length(frames)]
  // (or [output_length(frames)]) in [-1, 1]. With normalize_before the input is first (x − mean) / scale.
  at::Tensor forward(const at::Tensor& spectrogram);

  const SpeechT5HifiGanConfig& config() const { return config_; }

  at::Tensor mean, scale;
  torch::nn::Conv1d conv_pre{nullptr};
  torch::nn::ModuleList upsampler{nullptr};
  torch::nn::ModuleList resblocks{nullptr};
  torch::nn::Conv1d conv_post{nullptr};

 private:
  SpeechT5HifiGanConfig config_;
};
TORCH_MODULE(SpeechT5HifiGan);

}  // namespace a2a
