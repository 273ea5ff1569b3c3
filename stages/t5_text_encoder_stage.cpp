// t5_text_encoder: text -> T5 or UMT5 encoder states [1, L, d_model], as the diffusers pipelines feed
// them: Tango/AudioLDM 2 pad to max_length with an attention mask; Wan 2.1 cuts the states to the true
// length and zero-pads them to 512 rows without a mask.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/path_query.h"
#include "encoders/t5_encoder_model.h"
#include "nn/dtype.h"
#include "nn/seeded_init.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "tokenizers/tokenizer.h"
#include "weights/component_resolver.h"

namespace a2a {
namespace {

struct T5TextEncoder {
  T5EncoderModel model{nullptr};
  std::function<std::vector<int64_t>(const std::string&)> tokenize;  // ids without the end token
  int64_t eos_id = 1;
  int64_t pad_id = 0;
  std::string description;
};

// ByT5's byte ids: 0 = padding, 1 = </s>, 2 = unknown, byte b = b + 3. The tiny preset needs no file.
constexpr int64_t kT5ByteOffset = 3;

T5EncoderConfig tiny_t5_config(const Json& params) {
  T5EncoderConfig c =
      param_string(params, "tiny_family") == "umt5" ? T5EncoderConfig::umt5_defaults() : T5EncoderConfig();
  c.d_model = param_int(params, "tiny_d_model");
  c.num_heads = c.d_model % 4 == 0 ? 4 : 1;
  c.d_kv = c.d_model / c.num_heads;
  c.d_ff = 2 * c.d_model;
  c.num_layers = 2;
  c.vocab_size = 256 + kT5ByteOffset;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_new";
  c.is_gated_act = true;
  c.validate("t5_text_encoder tiny preset");
  return c;
}

std::shared_ptr<T5TextEncoder> tiny_t5_encoder(const Json& params, const ConfigureContext& ctx) {
  auto encoder = std::make_shared<T5TextEncoder>();
  encoder->model = T5EncoderModel(tiny_t5_config(params));
  initialize_seeded_weights(*encoder->model, static_cast<uint64_t>(param_int(params, "tiny_seed")));
  cast_floating_point(*encoder->model, dtype_from_name(ctx.dtype));
  encoder->model->to(torch::Device(ctx.device));
  encoder->model->eval();
  encoder->tokenize = [](const std::string& text) {
    std::vector<int64_t> ids;
    for (unsigned char c : text) ids.push_back(c + kT5ByteOffset);
    return ids;
  };
  encoder->description = "tiny built-in preset";
  return encoder;
}

// The tokenizer parameter, else tokenizer/ of a pipeline folder, else the model folder itself.
std::string t5_tokenizer_path(const std::string& model, const std::string& tokenizer) {
  if (!tokenizer.empty()) return tokenizer;
  if (is_folder(model + "/tokenizer")) return model + "/tokenizer";
  return component_folder(model, "text_encoder");
}

ResolvedComponent resolve_t5(const std::string& model, bool needs_weights) {
  ComponentRequest request;
  request.component = "text_encoder";
  request.who = "t5_text_encoder";
  request.needs_weights = needs_weights;
  request.hint = "give a transformers T5EncoderModel / UMT5EncoderModel folder or a pipeline folder with text_encoder/";
  return resolve_component(model, request);
}

std::shared_ptr<T5TextEncoder> load_t5_text_encoder(const std::string& model, const std::string& tokenizer,
                                                    const ConfigureContext& ctx) {
  auto encoder = std::make_shared<T5TextEncoder>();
  encoder->model = load_t5_encoder(model, "text_encoder", ctx.device, dtype_from_name(ctx.dtype));
  cast_floating_point(*encoder->model, dtype_from_name(ctx.dtype));
  std::shared_ptr<Tokenizer> t = load_tokenizer(t5_tokenizer_path(model, tokenizer));
  encoder->tokenize = [t](const std::string& text) { return t->encode(text); };
  encoder->eos_id = t->eos_id().value_or(encoder->model->config().eos_token_id);
  encoder->pad_id = t->pad_id().value_or(encoder->model->config().pad_token_id);
  encoder->description = model;
  return encoder;
}

// auto: UMT5 (Wan) trims and zero-pads, T5 (Tango) pads with a mask.
bool zero_padding(const std::string& padding, const T5EncoderConfig& config) {
  return padding == "zeros" || (padding == "auto" && config.model_type == "umt5");
}

std::vector<ParamProblem> check_t5_params(const Json& params) {
  const std::string model = param_string(params, "model");
  try {
    if (model.empty()) {
      tiny_t5_config(params);
      return {};
    }
    resolve_t5(model, /*needs_weights=*/false);
  } catch (const Error& e) {
    return {{model.empty() ? "tiny_d_model" : "model", e.code(), e.message()}};
  }
  const std::string tokenizer = t5_tokenizer_path(model, param_string(params, "tokenizer"));
  if (is_file(tokenizer)) return {};
  for (const char* name : {"/tokenizer.json", "/spiece.model", "/tokenizer.model"})
    if (is_file(tokenizer + name)) return {};
  return {{"tokenizer", "tokenizer_not_found",
           "t5_text_encoder: no tokenizer.json or spiece.model in " + tokenizer + " (set the tokenizer parameter)"}};
}

class T5TextEncoderStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    device_ = ctx.device;
    const std::string model = param_string(params, "model");
    if (model.empty()) {
      auto create = [&] { return tiny_t5_encoder(params, ctx); };
      encoder_ = ctx.shared_module<T5TextEncoder>("t5_text_encoder:tiny:" + param_string(params, "tiny_family") + ":" +
                                                      std::to_string(param_int(params, "tiny_d_model")) + ":" +
                                                      std::to_string(param_int(params, "tiny_seed")) + ":" +
                                                      ctx.device + ":" + ctx.dtype,
                                                  create);
    } else {
      const std::string path = ctx.resolve_path(model);
      const std::string tokenizer =
          param_string(params, "tokenizer").empty() ? "" : ctx.resolve_path(param_string(params, "tokenizer"));
      auto create = [&] { return load_t5_text_encoder(path, tokenizer, ctx); };
      encoder_ = ctx.shared_module<T5TextEncoder>(
          "t5_text_encoder:" + path + ":" + tokenizer + ":" + ctx.device + ":" + ctx.dtype, create);
    }
    zeros_ = zero_padding(param_string(params, "padding"), encoder_->model->config());
    max_length_ = param_int(params, "max_length");
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    PortValues out;
    out["embedding"] = encode(input(inputs, "text").text());
    ctx.check_cancelled();
    const Value* negative = optional_input(inputs, "negative_text");
    out["negative_embedding"] = encode(negative ? negative->text() : std::string());
    ctx.report_progress(1, 1, "text encoded");
    return out;
  }

  torch::nn::Module* module() override { return encoder_ ? encoder_->model.ptr().get() : nullptr; }

 private:
  // The tokenizer's ids cut to max_length - 1, then </s>, then padding: [1, max_length] ids and mask.
  std::pair<at::Tensor, at::Tensor> tokenize(const std::string& text) const {
    std::vector<int64_t> ids = encoder_->tokenize(text);
    const int64_t vocab = encoder_->model->config().vocab_size;
    for (int64_t id : ids) {
      if (id < 0 || id >= vocab) {
        throw_input_error("tokenizer_mismatch", "t5_text_encoder: the tokenizer gave id " + std::to_string(id) +
                                                    ", past the model's " + std::to_string(vocab) +
                                                    " embeddings (is it this model's tokenizer?)");
      }
    }
    if (static_cast<int64_t>(ids.size()) > max_length_ - 1) ids.resize(max_length_ - 1);
    ids.push_back(encoder_->eos_id);
    std::vector<int64_t> mask(ids.size(), 1);
    ids.resize(max_length_, encoder_->pad_id);
    mask.resize(max_length_, 0);
    return {torch::tensor(ids, torch::kLong).view({1, max_length_}),
            torch::tensor(mask, torch::kLong).view({1, max_length_})};
  }

  Value encode(const std::string& text) const {
    auto [ids, mask] = tokenize(text);
    const torch::Device device(device_);
    at::Tensor states =
        encoder_->model->forward(ids.to(device), mask.to(device)).last_hidden_state.to(torch::kCPU, torch::kFloat);
    if (!zeros_) return Value::embedding(states, mask);
    // Wan: the states of the real tokens, then zero rows up to max_length; no mask.
    const int64_t length = mask.sum().item<int64_t>();
    at::Tensor padded = at::zeros_like(states);
    padded.slice(1, 0, length).copy_(states.slice(1, 0, length));
    return Value::embedding(padded);
  }

  std::shared_ptr<T5TextEncoder> encoder_;
  bool zeros_ = false;
  int64_t max_length_ = 512;
  std::string device_ = "cpu";
};

StageInfo t5_text_encoder_info() {
  StageInfo info;
  info.type = "t5_text_encoder";
  info.description =
      "T5 / UMT5 text encoder (transformers T5EncoderModel, UMT5EncoderModel; the family is the config's model_type): "
      "FLAN-T5 is Tango's and AudioLDM 2's text encoder, umt5-xxl Wan 2.1's. The text is tokenized (SentencePiece "
      "Unigram, tokenizer.json or spiece.model), cut to max_length - 1 tokens, ended with </s> and padded. padding: "
      "mask gives [1, max_length, d_model] with the attention mask (Tango); zeros cuts the states to the true length "
      "and zero-pads them without a mask (Wan); auto picks zeros for UMT5 and mask for T5. Without a model it builds "
      "a tiny 2-layer preset with seeded random weights and ByT5-style byte ids.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "transformers T5EncoderModel / UMT5EncoderModel (or full T5) folder, or a pipeline folder with "
                 "text_encoder/ and tokenizer/ (Wan); empty = tiny built-in preset"),
      param_spec(
          "tokenizer", ParamType::Path, "",
          "tokenizer.json / spiece.model file or folder, when not tokenizer/ of the pipeline or beside the model"),
      choice_param("padding", "auto", {"auto", "mask", "zeros"},
                   "mask: pad with an attention mask (Tango); zeros: true length, zero rows, no mask (Wan); "
                   "auto: zeros for UMT5, mask for T5"),
      ranged_param("max_length", ParamType::Int, 512, 2, 4096,
                   "tokens per prompt with </s> (Wan's max_sequence_length and FLAN-T5's model_max_length are 512)"),
      choice_param("tiny_family", "t5", {"t5", "umt5"}, "model_type of the tiny preset"),
      ranged_param("tiny_d_model", ParamType::Int, 32, 4, 4096, "width of the tiny preset"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports.inputs = {in_port("text", ValueType::Text, "the prompt"),
                       optional_in_port("negative_text", ValueType::Text, "the negative prompt (default empty)")};
  info.ports.outputs = {
      out_port("embedding", ValueType::Embedding,
               "[1, max_length, d_model] states (mask 1 on tokens with padding: mask)"),
      out_port("negative_embedding", ValueType::Embedding, "[1, max_length, d_model] states of negative_text"),
  };
  info.create = [] { return std::make_unique<T5TextEncoderStage>(); };
  info.check_params = check_t5_params;
  return info;
}

A2A_REGISTER_STAGE(t5_text_encoder_info);

}  // namespace
}  // namespace a2a
