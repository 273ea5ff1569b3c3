#pragma once
// diffusers' WanTransformer3DModel (transformers/transformer_wan.py, 0.33.1): the Wan 2.1 text-to-video
// denoiser, named exactly like the diffusers state_dict: patch_embedding, condition_embedder.{time_embedder,
// time_proj, text_embedder}, blocks.N.{norm1, attn1, norm2, attn2, ffn.net.0.proj, ffn.net.2, norm3,
// scale_shift_table}, norm_out, proj_out, scale_shift_table. The image-to-video parts (image_dim's
// image_embedder, added_kv_proj_dim's add_k_proj / add_v_proj) are not implemented.
#include <ATen/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/attention_processor.h"
#include "diffusion/embeddings.h"
#include "diffusion/fp32_layer_norm.h"
#include "diffusion/transformer2d.h"
#include "diffusion/wan_rotary.h"

namespace a2a {

class ConfigReader;

// Mirrors WanTransformer3DModel's config.json field for field; defaults are the constructor's.
struct WanTransformer3DOptions {
  std::vector<int64_t> patch_size = {1, 2, 2};  // (t, h, w)
  int64_t num_attention_heads = 40;
  int64_t attention_head_dim = 128;
  int64_t in_channels = 16;
  std::optional<int64_t> out_channels = 16;  // null or 0: in_channels ("out_channels or in_channels")
  int64_t text_dim = 4096;
  int64_t freq_dim = 256;
  int64_t ffn_dim = 13824;
  int64_t num_layers = 40;
  bool cross_attn_norm = true;
  std::optional<std::string> qk_norm = std::string("rms_norm_across_heads");
  double eps = 1e-6;
  std::optional<int64_t> image_dim;          // image-to-video only: unsupported
  std::optional<int64_t> added_kv_proj_dim;  // image-to-video only: unsupported
  int64_t rope_max_seq_len = 1024;

  // Absent keys keep the defaults above; null clears the optional fields. Malformed values and another
  // _class_name throw a2a::Error ("bad_config", naming the file and the key).
  static WanTransformer3DOptions from_config(const ConfigReader& config);
  static WanTransformer3DOptions from_file(const std::string& config_json_path);

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t resolved_out_channels() const { return out_channels && *out_channels ? *out_channels : in_channels; }

  struct Problem {
    std::string code;  // "bad_config" (the reference cannot build or run it) or "unsupported_model_config"
    std::string message;
  };
  // Every problem with the configuration, one sentence each; empty when the model can be built.
  std::vector<Problem> problems() const;
};

struct WanConditionEmbeddings {
  at::Tensor temb;                   // [B, dim], in encoder_hidden_states' dtype
  at::Tensor timestep_proj;          // [B, 6·dim]
  at::Tensor encoder_hidden_states;  // [B, L, dim]
};

// WanTimeTextImageEmbedding without the image embedder: flip_sin_to_cos Timesteps (shift 0) ->
// time_embedder -> temb; time_proj(silu(temb)); text_embedder (tanh-GELU PixArt projection).
class WanTimeTextImageEmbeddingImpl : public torch::nn::Module {
 public:
  WanTimeTextImageEmbeddingImpl(int64_t dim, int64_t time_freq_dim, int64_t time_proj_dim, int64_t text_embed_dim);
  // timestep [B] (any numeric dtype); encoder_hidden_states [B, L, text_embed_dim].
  WanConditionEmbeddings forward(const at::Tensor& timestep, const at::Tensor& encoder_hidden_states);

  Timesteps timesteps_proj{nullptr};
  TimestepEmbedding time_embedder{nullptr};
  torch::nn::Linear time_proj{nullptr};
  PixArtAlphaTextProjection text_embedder{nullptr};
};
TORCH_MODULE(WanTimeTextImageEmbedding);

// Self-attention with rotary positions, cross-attention on the text, tanh-GELU feed-forward; the
// self-attention and feed-forward inputs are modulated by scale_shift_table + timestep_proj
// (shift, scale, gate for each), in float32 as the reference computes them.
class WanTransformerBlockImpl : public torch::nn::Module {
 public:
  WanTransformerBlockImpl(const WanTransformer3DOptions& options);
  // hidden_states [B, L, dim]; encoder_hidden_states [B, S, dim]; timestep_proj [B, 6, dim];
  // rotary_emb complex128 [1, 1, L, head_dim/2].
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& timestep_proj, const at::Tensor& rotary_emb);

  FP32LayerNorm norm1{nullptr};  // no affine parameters
  Attention attn1{nullptr};
  Attention attn2{nullptr};
  FP32LayerNorm norm2{nullptr};  // with cross_attn_norm only (else the identity)
  FeedForward ffn{nullptr};
  FP32LayerNorm norm3{nullptr};  // no affine parameters
  at::Tensor scale_shift_table;  // [1, 6, dim]
};
TORCH_MODULE(WanTransformerBlock);

class WanTransformer3DModelImpl : public torch::nn::Module {
 public:
  // Throws a2a::Error listing every problem of options.problems(): code "bad_config" when one of them is
  // a bad configuration, else "unsupported_model_config".
  explicit WanTransformer3DModelImpl(const WanTransformer3DOptions& options);

  // hidden_states [B, in_channels, F, H, W] with F, H, W multiples of patch_size; timestep [B], [1] or 0-d
  // (float, as WanPipeline passes the flow-matching timesteps); encoder_hidden_states [B, L, text_dim].
  // Both inputs are cast to the patch embedding's dtype. Returns [B, out_channels, F, H, W].
  at::Tensor forward(const at::Tensor& hidden_states, const at::Tensor& timestep,
                     const at::Tensor& encoder_hidden_states);

  const WanTransformer3DOptions& options() const { return options_; }

  WanRotaryPosEmbed rope{nullptr};
  torch::nn::Conv3d patch_embedding{nullptr};
  WanTimeTextImageEmbedding condition_embedder{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  FP32LayerNorm norm_out{nullptr};
  torch::nn::Linear proj_out{nullptr};
  at::Tensor scale_shift_table;  // [1, 2, dim]

 private:
  void check_inputs(const at::Tensor& hidden_states, const at::Tensor& timestep,
                    const at::Tensor& encoder_hidden_states) const;
  at::Tensor unpatchify(const at::Tensor& tokens, at::IntArrayRef input_sizes) const;

  WanTransformer3DOptions options_;
  std::array<int64_t, 3> patch_{};
  std::vector<WanTransformerBlock> block_list_;
};
TORCH_MODULE(WanTransformer3DModel);

// Casts the floating-point tensors to `dtype`, except those diffusers keeps in float32
// (_keep_in_fp32_modules: any tensor under time_embedder, scale_shift_table, norm1, norm2 or norm3).
void cast_wan_transformer_3d(WanTransformer3DModelImpl& model, at::ScalarType dtype);

// Builds the model from a diffusers folder (config.json + diffusion_pytorch_model.safetensors or its
// sharded index), or the `component` subfolder of a pipeline folder, resolved by resolve_component, and
// loads it strictly in `dtype` (float32 tensors kept as cast_wan_transformer_3d keeps them) on `device`.
WanTransformer3DModel load_wan_transformer_3d(const std::string& path, const std::string& component = "transformer",
                                              const std::string& device = "cpu", at::ScalarType dtype = at::kFloat,
                                              const std::string& variant = "");

}  // namespace a2a
