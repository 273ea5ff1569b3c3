// clip_text_encoder: text -> CLIP prompt embedding [B, max_length, D] (+ mask) and the pooled vector.
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/path_query.h"
#include "encoders/clip_text_model.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "tokenizers/byte_tokenizer.h"
#include "tokenizers/clip_tokenizer.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

// Ids for one prompt: [bos] + text ids (truncated) + [eos], then padding; mask 1 on the real tokens.
struct TokenizedPrompt {
  std::vector<int64_t> ids;
  std::vector<int64_t> mask;
};

struct ClipTextEncoder {
  std::shared_ptr<torch::nn::Module> model;  // CLIPTextModel or CLIPTextModelWithProjection
  CLIPTextTransformer text_model{nullptr};
  torch::nn::Linear text_projection{nullptr};  // only with projection
  std::function<TokenizedPrompt(const std::string& text, int64_t max_length)> tokenize;
  std::string description;
};

// The tiny built-in tokenizer: the UTF-8 bytes of the text are the ids (0..255), 256 = start, 257 = end
// and padding. It needs no vocabulary file, so the tiny preset runs offline; its embeddings carry no
// meaning until trained.
constexpr int64_t kByteBos = ByteTokenizer::kBos;
constexpr int64_t kByteEos = ByteTokenizer::kEos;

CLIPTextConfig tiny_clip_config(int64_t hidden_size, int64_t max_length) {
  CLIPTextConfig c;
  c.vocab_size = 258;
  c.hidden_size = hidden_size;
  c.intermediate_size = 2 * hidden_size;
  c.projection_dim = hidden_size;
  c.num_hidden_layers = 2;
  c.num_attention_heads = hidden_size % 4 == 0 ? 4 : 1;
  c.max_position_embeddings = std::max<int64_t>(77, max_length);
  c.bos_token_id = kByteBos;
  c.eos_token_id = kByteEos;
  c.pad_token_id = kByteEos;
  return c;
}

std::shared_ptr<ClipTextEncoder> load_encoder(const std::string& model_path, const std::string& tokenizer_path,
                                              const ConfigureContext& ctx) {
  ComponentRequest request;
  request.component = "text_encoder";
  request.who = "clip_text_encoder";
  request.hint =
      "give a transformers CLIP text model folder or a diffusers pipeline folder with text_encoder/ and "
      "tokenizer/";
  const ResolvedComponent files = resolve_component(model_path, request);
  // The pipeline folder when one was given, else the model folder itself.
  const fs::path root = files.pipeline_root.empty() ? fs::path(files.folder) : fs::path(files.pipeline_root);
  fs::path tokenizer_dir = !tokenizer_path.empty()           ? fs::path(tokenizer_path)
                           : path_exists(root / "tokenizer") ? root / "tokenizer"
                                                             : root;
  auto config = CLIPTextConfig::from_config(files.config);
  // The header alone tells which class the checkpoint is; the tensors are read by load_weights.
  const bool with_projection = SafeTensorsCheckpoint::open(files.weights)->contains("text_projection.weight");

  auto encoder = std::make_shared<ClipTextEncoder>();
  if (with_projection) {
    CLIPTextModelWithProjection model(config);
    encoder->text_model = model->text_model;
    encoder->text_projection = model->text_projection;
    encoder->model = model.ptr();
  } else {
    CLIPTextModel model(config);
    encoder->text_model = model->text_model;
    encoder->model = model.ptr();
  }
  LoadOptions options;
  options.device = ctx.device;
  options.dtype = dtype_from_name(ctx.dtype);
  load_weights(*encoder->model, files.weights, options);
  cast_floating_point(*encoder->model, *options.dtype);
  encoder->model->eval();

  if (!path_exists(tokenizer_dir / "vocab.json") || !path_exists(tokenizer_dir / "merges.txt")) {
    throw_input_error("tokenizer_not_found", "clip_text_encoder: no vocab.json + merges.txt in " +
                                                 tokenizer_dir.string() + " (set the tokenizer parameter)");
  }
  std::shared_ptr<ClipTokenizer> tokenizer = ClipTokenizer::from_folder(tokenizer_dir.string());
  encoder->tokenize = [tokenizer](const std::string& text, int64_t max_length) {
    auto encoding = tokenizer->encode_padded(text, max_length);
    return TokenizedPrompt{encoding.ids, encoding.attention_mask};
  };
  encoder->description = files.folder;
  return encoder;
}

// [256] + bytes (cut to max_length - 2) + [257], padded with 257.
TokenizedPrompt byte_tokenize(const std::string& text, int64_t max_length) {
  static const ByteTokenizer bytes;
  PaddedIds padded = bytes.encode_padded(text, max_length, kByteEos);
  return TokenizedPrompt{std::move(padded.ids), std::move(padded.mask)};
}

// The tiny preset: a 2-layer CLIP text model with seeded weights. With a tokenizer folder it reads
// CLIP's real vocabulary (the embedding table then has its 49408 rows); without one, bytes.
std::shared_ptr<ClipTextEncoder> tiny_encoder(int64_t hidden_size, int64_t max_length, uint64_t seed,
                                              const std::string& tokenizer_dir, const ConfigureContext& ctx) {
  auto encoder = std::make_shared<ClipTextEncoder>();
  CLIPTextConfig config = tiny_clip_config(hidden_size, max_length);
  encoder->tokenize = byte_tokenize;
  if (!tokenizer_dir.empty()) {
    std::shared_ptr<ClipTokenizer> tokenizer = ClipTokenizer::from_folder(tokenizer_dir);
    config.vocab_size = tokenizer->vocab_size();
    config.bos_token_id = tokenizer->bos_id().value_or(0);
    config.eos_token_id = tokenizer->eos_id().value_or(config.vocab_size - 1);
    config.pad_token_id = tokenizer->pad_id().value_or(config.eos_token_id);
    encoder->tokenize = [tokenizer](const std::string& text, int64_t length) {
      auto encoding = tokenizer->encode_padded(text, length);
      return TokenizedPrompt{encoding.ids, encoding.attention_mask};
    };
  }
  CLIPTextModel model(config);
  initialize_seeded_weights(*model, seed);
  cast_floating_point(*model, dtype_from_name(ctx.dtype));
  model->to(torch::Device(ctx.device));
  model->eval();
  encoder->text_model = model->text_model;
  encoder->model = model.ptr();
  encoder->description = "tiny built-in preset";
  return encoder;
}

// max_length and clip_skip against the model's config.json, before anything loads. The tiny preset is
// built with max_length positions and has nothing to check.
std::vector<ParamProblem> check_clip_params(const Json& params) {
  const std::string model = param_string(params, "model");
  if (model.empty()) return {};
  ComponentRequest request;
  request.component = "text_encoder";
  request.who = "clip_text_encoder";
  request.needs_weights = false;
  const CLIPTextConfig config = CLIPTextConfig::from_config(resolve_component(model, request).config);
  std::vector<ParamProblem> problems;
  if (const int64_t max_length = param_int(params, "max_length"); max_length > config.max_position_embeddings)
    problems.push_back({"max_length", "max_length_too_large",
                        "max_length " + std::to_string(max_length) + " exceeds the model's " +
                            std::to_string(config.max_position_embeddings) + " positions"});
  if (const int64_t skip = param_int(params, "clip_skip"); skip > config.num_hidden_layers)
    problems.push_back({"clip_skip", "bad_clip_skip",
                        "clip_skip " + std::to_string(skip) + " exceeds the model's " +
                            std::to_string(config.num_hidden_layers) + " layers"});
  return problems;
}

class ClipTextEncoderStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    max_length_ = param_int(params, "max_length");
    clip_skip_ = param_int(params, "clip_skip");
    device_ = ctx.device;
    const std::string model = param_string(params, "model");
    const std::string tokenizer = param_string(params, "tokenizer");
    if (model.empty()) {
      const int64_t hidden = param_int(params, "tiny_hidden_size");
      const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
      const std::string tokenizer_path = tokenizer.empty() ? std::string() : ctx.resolve_path(tokenizer);
      auto create = [&] { return tiny_encoder(hidden, max_length_, seed, tokenizer_path, ctx); };
      const std::string key = "clip_text_encoder:tiny:" + std::to_string(hidden) + ":" + std::to_string(seed) + ":" +
                              std::to_string(std::max<int64_t>(77, max_length_)) + ":" + tokenizer_path + ":" +
                              ctx.device + ":" + ctx.dtype;
      encoder_ = ctx.shared_module<ClipTextEncoder>(key, create);
    } else {
      const std::string model_path = ctx.resolve_path(model);
      const std::string tokenizer_path = tokenizer.empty() ? std::string() : ctx.resolve_path(tokenizer);
      auto create = [&] { return load_encoder(model_path, tokenizer_path, ctx); };
      const std::string key =
          "clip_text_encoder:" + model_path + ":" + tokenizer_path + ":" + ctx.device + ":" + ctx.dtype;
      encoder_ = ctx.shared_module<ClipTextEncoder>(key, create);
    }
    const auto& config = encoder_->text_model->config;
    if (max_length_ > config.max_position_embeddings) {
      throw_input_error("max_length_too_large", "clip_text_encoder: max_length " + std::to_string(max_length_) +
                                                    " exceeds the model's " +
                                                    std::to_string(config.max_position_embeddings) + " positions");
    }
    if (clip_skip_ > config.num_hidden_layers) {
      throw_input_error("bad_clip_skip", "clip_text_encoder: clip_skip " + std::to_string(clip_skip_) +
                                             " exceeds the model's " + std::to_string(config.num_hidden_layers) +
                                             " layers");
    }
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    PortValues out;
    auto [embedding, mask, pooled] = encode(input(inputs, "text").text());
    out["embedding"] = Value::embedding(embedding, mask);
    out["pooled"] = Value::tensor(pooled);
    ctx.check_cancelled();
    const Value* negative = optional_input(inputs, "negative_text");
    auto [negative_embedding, negative_mask, negative_pooled] = encode(negative ? negative->text() : std::string());
    (void)negative_pooled;
    out["negative_embedding"] = Value::embedding(negative_embedding, negative_mask);
    ctx.report_progress(1, 1, "text encoded");
    return out;
  }

  torch::nn::Module* module() override { return encoder_ ? encoder_->model.get() : nullptr; }

 private:
  std::tuple<at::Tensor, at::Tensor, at::Tensor> encode(const std::string& text) {
    auto tokens = encoder_->tokenize(text, max_length_);
    auto device = torch::Device(device_);
    auto ids = torch::tensor(tokens.ids, torch::kLong).view({1, max_length_}).to(device);
    auto mask = torch::tensor(tokens.mask, torch::kLong).view({1, max_length_});
    auto& text_model = *encoder_->text_model;
    // As Stable Diffusion: no attention mask, only the causal one.
    auto result = text_model.forward(ids, {}, /*output_hidden_states=*/clip_skip_ > 0);
    at::Tensor embedding =
        clip_skip_ > 0
            ? text_model.final_layer_norm(result.hidden_states[text_model.config.num_hidden_layers - clip_skip_])
            : result.last_hidden_state;
    at::Tensor pooled =
        encoder_->text_projection ? encoder_->text_projection(result.pooler_output) : result.pooler_output;
    return {embedding.to(torch::kCPU, torch::kFloat), mask, pooled.to(torch::kCPU, torch::kFloat)};
  }

  std::shared_ptr<ClipTextEncoder> encoder_;
  int64_t max_length_ = 77;
  int64_t clip_skip_ = 0;
  std::string device_ = "cpu";
};

StageInfo clip_text_encoder_info() {
  StageInfo info;
  info.type = "clip_text_encoder";
  info.description =
      "CLIP text encoder (transformers CLIPTextModel / CLIPTextModelWithProjection): the prompt is tokenized with "
      "<|startoftext|> ... <|endoftext|>, padded to max_length, and encoded with the causal mask only, as Stable "
      "Diffusion does. Without a model it builds a tiny 2-layer preset with seeded random weights; its tokenizer is "
      "CLIP's when the tokenizer parameter names a vocab.json + merges.txt folder, otherwise a byte-level one "
      "(ids = UTF-8 bytes, 256 = start, 257 = end and padding). The model computes in the pipeline's dtype (attention "
      "softmax in float32); the embeddings come out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "transformers CLIP text model folder (config.json, model.safetensors, vocab.json, merges.txt) or a "
                 "diffusers pipeline folder (text_encoder/, tokenizer/); empty = tiny built-in preset"),
      param_spec("tokenizer", ParamType::Path, "",
                 "tokenizer folder (vocab.json + merges.txt) when not beside the model; with the tiny preset it "
                 "replaces the byte-level tokenizer"),
      ranged_param("clip_skip", ParamType::Int, 0, 0, 48,
                   "skip the last k layers: the output of layer N-k through final_layer_norm (diffusers' clip_skip)"),
      ranged_param("max_length", ParamType::Int, 77, 2, 1024, "tokens per prompt, padded and truncated"),
      ranged_param("tiny_hidden_size", ParamType::Int, 32, 4, 4096,
                   "width of the tiny preset (its cross-attention dim)"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports.inputs = {in_port("text", ValueType::Text, "the prompt"),
                       optional_in_port("negative_text", ValueType::Text,
                                        "the negative prompt for classifier-free guidance (default empty)")};
  info.ports.outputs = {
      out_port("embedding", ValueType::Embedding, "[1, max_length, D] prompt embedding; mask 1 on real tokens"),
      out_port("pooled", ValueType::Tensor,
               "[1, D] state at <|endoftext|> (projected by text_projection for CLIPTextModelWithProjection)"),
      out_port("negative_embedding", ValueType::Embedding, "[1, max_length, D] embedding of negative_text"),
  };
  info.create = [] { return std::make_unique<ClipTextEncoderStage>(); };
  info.check_params = check_clip_params;
  return info;
}

A2A_REGISTER_STAGE(clip_text_encoder_info);

}  // namespace
}  // namespace a2a
