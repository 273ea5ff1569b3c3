// clap_text_encoder: text -> CLAP text embedding [1, 1, projection_dim], L2-normalised as AudioLDM
// conditions its UNet, and the same for the negative prompt.
#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "base/path_query.h"
#include "diffusion/audioldm.h"
#include "encoders/clap_text_model.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "tokenizers/byte_tokenizer.h"
#include "tokenizers/tokenizer.h"
#include "weights/component_resolver.h"
#include "weights/hf_layout.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

struct ClapTextEncoder {
  ClapTextModelWithProjection model{nullptr};
  // Text to ids without special tokens.
  std::function<std::vector<int64_t>(const std::string&)> tokenize;
  int64_t bos_id = 0, eos_id = 2;
};

// The tiny built-in tokenizer: RoBERTa's special ids (<s> = 0, <pad> = 1, </s> = 2) then the UTF-8
// bytes shifted by 3. It needs no vocabulary file, so the tiny preset runs offline.
constexpr int64_t kByteOffset = 3;

ClapTextConfig tiny_clap_config() {
  ClapTextConfig c;
  c.vocab_size = 256 + kByteOffset;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.projection_dim = 32;
  return c;
}

std::shared_ptr<ClapTextEncoder> tiny_encoder(uint64_t seed, const std::string& device, at::ScalarType dtype) {
  auto encoder = std::make_shared<ClapTextEncoder>();
  encoder->model = ClapTextModelWithProjection(tiny_clap_config());
  initialize_seeded_weights(*encoder->model, seed);
  cast_floating_point(*encoder->model, dtype);
  encoder->model->to(torch::Device(device));
  encoder->model->eval();
  encoder->tokenize = [](const std::string& text) {
    static const ByteTokenizer bytes({kByteOffset, /*bos_id=*/0, /*eos_id=*/2, /*first_added_id=*/256 + kByteOffset});
    return bytes.encode(text);
  };
  return encoder;
}

std::shared_ptr<ClapTextEncoder> load_encoder(const std::string& model_path, const std::string& tokenizer_path,
                                              const std::string& device, at::ScalarType dtype) {
  ComponentRequest request;
  request.component = "text_encoder";
  request.who = "clap_text_encoder";
  request.hint =
      "give a transformers ClapTextModelWithProjection folder or an AudioLDM pipeline folder with "
      "text_encoder/ and tokenizer/";
  const ResolvedComponent files = resolve_component(model_path, request);
  const std::string& model_dir = files.folder;
  auto encoder = std::make_shared<ClapTextEncoder>();
  encoder->model = ClapTextModelWithProjection(ClapTextConfig::from_config(files.config));
  LoadOptions options;
  options.device = device;
  options.dtype = dtype;
  load_weights(*encoder->model, files.weights, options);
  cast_floating_point(*encoder->model, dtype);
  encoder->model->eval();

  std::string tokenizer_dir = tokenizer_path;
  if (tokenizer_dir.empty()) {
    fs::path beside = fs::path(model_dir).parent_path() / "tokenizer";
    tokenizer_dir = path_exists(fs::path(model_path) / "tokenizer") ? (fs::path(model_path) / "tokenizer").string()
                    : path_exists(beside)                           ? beside.string()
                                                                    : model_dir;
  }
  // tokenizer.json when present, else RoBERTa's vocab.json + merges.txt (GPT-2's format).
  std::shared_ptr<Tokenizer> tokenizer = load_tokenizer(
      tokenizer_dir, path_exists(fs::path(tokenizer_dir) / "tokenizer.json") ? std::string() : std::string("gpt2"));
  const auto& config = encoder->model->text_model->config;
  encoder->bos_id = tokenizer->token_to_id("<s>").value_or(config.bos_token_id);
  encoder->eos_id = tokenizer->token_to_id("</s>").value_or(config.eos_token_id);
  encoder->tokenize = [tokenizer](const std::string& text) { return tokenizer->encode(text); };
  return encoder;
}

class ClapTextEncoderStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    max_length_ = param_int(params, "max_length");
    normalize_ = param_bool(params, "normalize");
    const at::ScalarType dtype = dtype_from_name(ctx.dtype);
    const std::string model = param_string(params, "model");
    const std::string tokenizer = param_string(params, "tokenizer");
    if (model.empty()) {
      const uint64_t seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
      auto create = [&] { return tiny_encoder(seed, device_, dtype); };
      const std::string key = "clap_text_encoder:tiny:" + std::to_string(seed) + ":" + device_ + ":" + ctx.dtype;
      encoder_ = ctx.shared_module<ClapTextEncoder>(key, create);
    } else {
      const std::string model_path = ctx.resolve_path(model);
      const std::string tokenizer_path = tokenizer.empty() ? std::string() : ctx.resolve_path(tokenizer);
      auto create = [&] { return load_encoder(model_path, tokenizer_path, device_, dtype); };
      const std::string key =
          "clap_text_encoder:" + model_path + ":" + tokenizer_path + ":" + device_ + ":" + ctx.dtype;
      encoder_ = ctx.shared_module<ClapTextEncoder>(key, create);
    }
    const auto& config = encoder_->model->text_model->config;
    const int64_t positions = config.max_position_embeddings - config.pad_token_id - 1;
    if (max_length_ > positions) {
      throw_input_error("max_length_too_large", "clap_text_encoder: max_length " + std::to_string(max_length_) +
                                                    " exceeds the model's " + std::to_string(positions) + " positions");
    }
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    PortValues out;
    out["embedding"] = Value::embedding(encode(input(inputs, "text").text()), torch::ones({1, 1}, torch::kLong));
    ctx.check_cancelled();
    // AudioLDM's unconditional embedding is the encoding of "" when no negative prompt is given.
    const Value* negative = optional_input(inputs, "negative_text");
    out["negative_embedding"] =
        Value::embedding(encode(negative ? negative->text() : std::string()), torch::ones({1, 1}, torch::kLong));
    ctx.report_progress(1, 1, "text encoded");
    return out;
  }

  torch::nn::Module* module() override { return encoder_ ? encoder_->model.ptr().get() : nullptr; }

 private:
  // [<s>] + ids (truncated) + [</s>]. AudioLDM pads to 512 tokens under an attention mask; padding only
  // adds masked keys and never moves the <s> position, so encoding the unpadded ids gives the same
  // embedding at a fraction of the cost.
  at::Tensor encode(const std::string& text) {
    std::vector<int64_t> ids = {encoder_->bos_id};
    std::vector<int64_t> body = encoder_->tokenize(text);
    if (static_cast<int64_t>(body.size()) > max_length_ - 2) body.resize(static_cast<size_t>(max_length_ - 2));
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(encoder_->eos_id);
    auto input_ids = torch::tensor(ids, torch::kLong).view({1, -1}).to(torch::Device(device_));
    // The norm in float32: the embedding leaves the stage in float32 whatever the model's dtype.
    at::Tensor embeds = encoder_->model->forward(input_ids).text_embeds.to(at::kFloat);
    // F.normalize(x, dim=-1): x / max(‖x‖, 1e-12).
    if (normalize_) embeds = embeds / embeds.norm(2, -1, /*keepdim=*/true).clamp_min(1e-12);
    return embeds.unsqueeze(1).to(torch::kCPU, torch::kFloat);
  }

  std::shared_ptr<ClapTextEncoder> encoder_;
  int64_t max_length_ = 512;
  bool normalize_ = true;
  std::string device_ = "cpu";
};

StageInfo clap_text_encoder_info() {
  StageInfo info;
  info.type = "clap_text_encoder";
  info.description =
      "CLAP text encoder (transformers ClapTextModelWithProjection, RoBERTa): the prompt as <s> ... </s>, the "
      "projection of the pooled <s> state, L2-normalised as AudioLDM uses it for its UNet's class conditioning. "
      "Without a model it builds a tiny 2-layer preset with seeded random weights and a byte-level tokenizer "
      "(ids = UTF-8 bytes + 3 after RoBERTa's <s>, <pad>, </s>). The model computes in the pipeline's dtype (attention "
      "softmax in float32); the embeddings are normalised and come out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "transformers ClapTextModelWithProjection folder (config.json, model.safetensors) or an AudioLDM "
                 "pipeline folder (text_encoder/, tokenizer/); empty = tiny built-in preset"),
      param_spec("tokenizer", ParamType::Path, "",
                 "tokenizer folder (tokenizer.json, or vocab.json + merges.txt) when not beside the model"),
      ranged_param("max_length", ParamType::Int, 512, 3, 8192,
                   "tokens per prompt including <s> and </s>; longer "
                   "prompts are truncated"),
      param_spec("normalize", ParamType::Bool, true, "L2-normalise the embedding (AudioLDM does)"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports.inputs = {in_port("text", ValueType::Text, "the prompt"),
                       optional_in_port("negative_text", ValueType::Text,
                                        "the negative prompt for classifier-free guidance (default empty)")};
  info.ports.outputs = {
      out_port("embedding", ValueType::Embedding, "[1, 1, projection_dim] text embedding"),
      out_port("negative_embedding", ValueType::Embedding, "[1, 1, projection_dim] embedding of negative_text"),
  };
  info.create = [] { return std::make_unique<ClapTextEncoderStage>(); };
  return info;
}

A2A_REGISTER_STAGE(clap_text_encoder_info);

}  // namespace
}  // namespace a2a
