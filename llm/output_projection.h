#pragma once
// NExT-GPT's output projection (TextFcLayer, after GILL): maps the LLM's hidden states at a modality's
// signal tokens [B, K, in_dim] to a decoder's conditioning [B, M, out_dim].
//   linear:      model(hidden)[:, :M]
//   transformer: model(tfm(src = fc(hidden + input_embeds), tgt = query_embs.repeat(B, 1, 1)))
// tfm is torch.nn.Transformer(batch_first=True, norm_first=True, dropout=0, relu) under its own
// parameter names (in_proj_weight packed q/k/v, norm1..3, final encoder/decoder norms).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <string>

namespace a2a {

class ConfigReader;

struct OutputProjectionOptions {
  int64_t in_dim = 4096;
  int64_t out_dim = 768;
  int64_t num_input_tokens = 4;      // K signal tokens
  int64_t num_output_tokens = 77;    // M conditioning rows
  std::string mode = "transformer";  // linear | transformer
  int64_t hidden_dim = 512;
  int64_t nhead = 4;
  int64_t num_encoder_layers = 4;
  int64_t num_decoder_layers = 4;
  int64_t dim_feedforward = 2048;  // 4 * hidden_dim in NExT-GPT
  double layer_norm_eps = 1e-5;

  // Accepts NExT-GPT's names and the fixture's ("layers" sets both layer counts).
  static OutputProjectionOptions from_json(const nlohmann::json& config);
  static OutputProjectionOptions from_config(const ConfigReader& config);
  void validate() const;
};

// torch.nn.MultiheadAttention(batch_first=True) with packed in_proj_weight/in_proj_bias.
class PackedMultiheadAttentionImpl : public torch::nn::Module {
 public:
  PackedMultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads);
  at::Tensor forward(const at::Tensor& query, const at::Tensor& key_value);
  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  int64_t num_heads;
};
TORCH_MODULE(PackedMultiheadAttention);

// torch.nn.TransformerEncoderLayer(norm_first=True, activation=relu, dropout=0).
class PreNormEncoderLayerImpl : public torch::nn::Module {
 public:
  PreNormEncoderLayerImpl(int64_t d_model, int64_t nhead, int64_t dim_feedforward, double eps);
  at::Tensor forward(const at::Tensor& src);
  PackedMultiheadAttention self_attn{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(PreNormEncoderLayer);

// torch.nn.TransformerDecoderLayer(norm_first=True, activation=relu, dropout=0), no masks.
class PreNormDecoderLayerImpl : public torch::nn::Module {
 public:
  PreNormDecoderLayerImpl(int64_t d_model, int64_t nhead, int64_t dim_feedforward, double eps);
  at::Tensor forward(const at::Tensor& tgt, const at::Tensor& memory);
  PackedMultiheadAttention self_attn{nullptr}, multihead_attn{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(PreNormDecoderLayer);

// A stack of layers followed by the final LayerNorm, named "layers.N" and "norm" as in torch.
class PreNormEncoderImpl : public torch::nn::Module {
 public:
  PreNormEncoderImpl(int64_t layers, int64_t d_model, int64_t nhead, int64_t dim_feedforward, double eps);
  at::Tensor forward(const at::Tensor& src);
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PreNormEncoder);

class PreNormDecoderImpl : public torch::nn::Module {
 public:
  PreNormDecoderImpl(int64_t layers, int64_t d_model, int64_t nhead, int64_t dim_feedforward, double eps);
  at::Tensor forward(const at::Tensor& tgt, const at::Tensor& memory);
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PreNormDecoder);

// torch.nn.Transformer(batch_first=True, norm_first=True): encoder and decoder with final norms.
class PreNormTransformerImpl : public torch::nn::Module {
 public:
  PreNormTransformerImpl(int64_t d_model, int64_t nhead, int64_t encoder_layers, int64_t decoder_layers,
                         int64_t dim_feedforward, double eps);
  at::Tensor forward(const at::Tensor& src, const at::Tensor& tgt);
  PreNormEncoder encoder{nullptr};
  PreNormDecoder decoder{nullptr};
};
TORCH_MODULE(PreNormTransformer);

class OutputProjectionImpl : public torch::nn::Module {
 public:
  explicit OutputProjectionImpl(const OutputProjectionOptions& options);
  // hidden_states [B, K, in_dim]; input_embeds [B, K, in_dim] (transformer mode adds them; may be
  // undefined, then nothing is added). Returns [B, M, out_dim].
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& input_embeds = {});
  OutputProjectionOptions options;
  torch::nn::Linear fc{nullptr}, model{nullptr};
  PreNormTransformer tfm{nullptr};
  at::Tensor query_embs;  // [1, M, hidden]
};
TORCH_MODULE(OutputProjection);

}  // namespace a2a
