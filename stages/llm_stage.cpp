// llm: a Llama-family causal LM as a stage. Text (and any number of media embeddings placed at markers
// in the prompt) in; generated text, its token ids and, per declared modality, the hidden states at the
// signal tokens the model emitted ([IMG0]..[IMG3] in NExT-GPT) out. A modality the model did not call
// for leaves its port absent, so the decoders behind it are skipped.
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "base/path_query.h"
#include "llm/chat_template.h"
#include "llm/llama.h"
#include "llm/llama2c.h"
#include "llm/llama_generate.h"
#include "llm/llama_tiny.h"
#include "llm/prompt_markers.h"
#include "nn/dtype.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "tokenizers/tokenizer.h"
#include "weights/component_resolver.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

// A medium placed in the prompt: the marker text is replaced by begin + the embedding rows + end.
struct MediaSlot {
  std::string name;
  std::string marker;
  std::string begin;
  std::string end;
};

std::vector<MediaSlot> media_slots(const Json& params) {
  std::vector<MediaSlot> slots;
  const Json& media = params.at("media");
  if (!media.is_object()) throw_config_error("bad_media", "llm: 'media' must map a modality name to a marker");
  for (const auto& kv : media.items()) {
    MediaSlot slot;
    slot.name = kv.key();
    if (kv.value().is_string()) {
      slot.marker = kv.value().get<std::string>();
    } else if (kv.value().is_object()) {
      slot.marker = kv.value().value("marker", "<" + kv.key() + ">");
      slot.begin = kv.value().value("begin", std::string());
      slot.end = kv.value().value("end", std::string());
    } else {
      throw_config_error("bad_media", "llm: media '" + kv.key() + "' must be a marker string or {marker, begin, end}");
    }
    if (slot.marker.empty()) throw_config_error("bad_media", "llm: media '" + kv.key() + "' has an empty marker");
    if (slot.begin.empty() && slot.end.empty()) {
      slot.begin = params.at("media_begin").get<std::string>();
      slot.end = params.at("media_end").get<std::string>();
    }
    slots.push_back(slot);
  }
  return slots;
}

void check_signal_layers(const std::vector<int64_t>& layers, int64_t hidden_count) {
  for (auto layer : layers)
    if (layer >= hidden_count || layer < -hidden_count)
      throw_config_error("bad_signal_layers", "llm: signal layer " + std::to_string(layer) +
                                                  " is outside the model's " + std::to_string(hidden_count) +
                                                  " hidden states (" + std::to_string(-hidden_count) + " to " +
                                                  std::to_string(hidden_count - 1) + ")");
}

// The text of `ids` as it reads after `context`. Decoders drop the leading space of a text's first piece
// (SentencePiece's rule after BOS); a reply continues the prompt, so " park." after "the" keeps its space.
std::string decode_continuation(const Tokenizer& tokenizer, const std::vector<int64_t>& context,
                                const std::vector<int64_t>& ids) {
  if (context.empty() || ids.empty()) return tokenizer.decode(ids, /*skip_special=*/true);
  std::vector<int64_t> joined = context;
  joined.insert(joined.end(), ids.begin(), ids.end());
  const std::string head = tokenizer.decode(context, true);
  const std::string full = tokenizer.decode(joined, true);
  if (full.compare(0, head.size(), head) != 0) return tokenizer.decode(ids, true);
  return full.substr(head.size());
}

std::vector<std::pair<std::string, std::vector<std::string>>> declared_signals(const Json& params) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  const Json& signals = params.at("signal_tokens");
  if (!signals.is_object())
    throw_config_error("bad_signal_tokens", "llm: 'signal_tokens' must map a modality name to a token list");
  for (const auto& kv : signals.items()) {
    if (!kv.value().is_array() || kv.value().empty())
      throw_config_error("bad_signal_tokens",
                         "llm: signal_tokens '" + kv.key() + "' must be a non-empty list of tokens");
    std::vector<std::string> tokens;
    for (const auto& t : kv.value()) {
      if (!t.is_string() || t.get<std::string>().empty())
        throw_config_error("bad_signal_tokens",
                           "llm: signal_tokens '" + kv.key() + "' holds a non-string or empty token");
      tokens.push_back(t.get<std::string>());
    }
    out.emplace_back(kv.key(), tokens);
  }
  return out;
}

// The loaded model, its tokenizer (with the signal tokens added) and the signal ids.
struct LlmBundle {
  LlamaForCausalLM model{nullptr};
  std::shared_ptr<Tokenizer> tokenizer;
  std::vector<SignalModality> signals;
  std::string description;
};

std::string default_tokenizer_path(const std::string& model_path, int64_t vocab_size) {
  const fs::path model(model_path);
  if (is_folder(model)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model"})
      if (path_exists(model / name)) return (model / name).string();
    return model.string();
  }
  const fs::path dir = model.parent_path();
  for (const std::string& name : {std::string("tokenizer.bin"), "tok" + std::to_string(vocab_size) + ".bin"})
    if (path_exists(dir / name)) return (dir / name).string();
  throw_input_error("tokenizer_not_found", "llm: no tokenizer beside " + model_path +
                                               " (looked for tokenizer.bin and tok" + std::to_string(vocab_size) +
                                               ".bin); set the tokenizer parameter");
}

std::shared_ptr<LlmBundle> build_bundle(const Json& params, const ConfigureContext& ctx, const std::string& model_path,
                                        const std::string& tokenizer_path, const std::string& lora_path) {
  auto bundle = std::make_shared<LlmBundle>();
  if (!model_path.empty()) {
    auto loaded = load_llama(model_path, ctx.device, lora_path, dtype_from_name(ctx.dtype));
    bundle->model = loaded.model;
    const std::string tok =
        tokenizer_path.empty() ? default_tokenizer_path(model_path, loaded.options.vocab_size) : tokenizer_path;
    bundle->tokenizer = load_tokenizer(tok, param_string(params, "tokenizer_family"));
    bundle->description = model_path + " (" + loaded.format + ")";
  } else {
    TinyLlamaPreset preset;
    preset.hidden_size = param_int(params, "tiny_hidden_size");
    preset.num_hidden_layers = param_int(params, "tiny_layers");
    preset.seed = static_cast<uint64_t>(param_int(params, "tiny_seed"));
    bundle->model = LlamaForCausalLM(tiny_llama_options(preset));
    initialize_tiny_llama_weights(*bundle->model, preset.seed);
    cast_floating_point(*bundle->model, dtype_from_name(ctx.dtype));
    bundle->model->to(at::Device(ctx.device));
    bundle->model->eval();
    bundle->tokenizer = std::make_shared<ByteTokenizer>();
    bundle->description = "tiny built-in preset";
  }
  for (const auto& [name, tokens] : declared_signals(params)) {
    SignalModality modality;
    modality.name = name;
    modality.tokens = tokens;
    modality.ids = bundle->tokenizer->add_special_tokens(tokens);
    bundle->signals.push_back(modality);
  }
  // Signal tokens the weights already hold keep their trained rows; missing rows are added.
  int64_t needed = bundle->tokenizer->vocab_size();
  for (const auto& m : bundle->signals)
    for (auto id : m.ids) needed = std::max(needed, id + 1);
  if (needed > bundle->model->options().vocab_size) bundle->model->resize_token_embeddings(needed);
  return bundle;
}

// The model's layer count without loading its weights: the tiny preset's parameter, config.json of a
// transformers folder, or the checked header of a llama2.c .bin. 0 when config.json does not say.
int64_t layer_count(const Json& params) {
  const std::string model = param_string(params, "model");
  if (model.empty()) return param_int(params, "tiny_layers");
  if (!is_folder(model)) return read_llama2c_options(model).num_hidden_layers;
  ComponentRequest request;
  request.needs_weights = false;
  request.who = "llm";
  return resolve_component(model, request).config.get_or<int64_t>("num_hidden_layers", 0);
}

// The rules validation checks before anything loads: one model source, the media and signal_tokens
// mappings, and signal layers within the model's hidden states.
std::vector<ParamProblem> check_llm_params(const Json& params) {
  std::vector<ParamProblem> problems;
  auto rule = [&](const std::string& param, const std::function<void()>& check) {
    try {
      check();
    } catch (const Error& e) {
      problems.push_back({param, e.code(), e.message()});
    }
  };
  if (param_string(params, "preset") == "tiny" && !param_string(params, "model").empty())
    problems.push_back({"preset", "conflicting_model", "give either a model or preset: tiny, not both"});
  rule("media", [&] { media_slots(params); });
  rule("signal_tokens", [&] { declared_signals(params); });
  int64_t count = 0;
  rule("model", [&] { count = layer_count(params); });
  rule("signal_layers", [&] {
    const auto layers = params.at("signal_layers").get<std::vector<int64_t>>();
    if (layers.empty()) throw_config_error("bad_signal_layers", "signal_layers must name at least one layer");
    if (count > 0) check_signal_layers(layers, count + 1);
  });
  return problems;
}

class LlmStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    params_ = params;
    device_ = ctx.device;
    const std::string model = param_string(params, "model");
    const std::string model_path = model.empty() ? std::string() : ctx.resolve_path(model);
    const std::string tokenizer = param_string(params, "tokenizer");
    const std::string tokenizer_path = tokenizer.empty() ? std::string() : ctx.resolve_path(tokenizer);
    const std::string lora = param_string(params, "lora");
    const std::string lora_path = lora.empty() ? std::string() : ctx.resolve_path(lora);
    const bool tiny = param_string(params, "preset") == "tiny";
    if (tiny && !model.empty())
      throw_config_error("conflicting_model", "llm: give either a model or preset: tiny, not both");
    // A model that is named but absent is an error, never a silent switch to random weights.
    if (!model_path.empty() && !path_exists(model_path))
      throw_input_error("missing_model", "llm: model path '" + model_path + "' does not exist");
    std::string key = "llm:" + (!model_path.empty() ? model_path + ":" + tokenizer_path + ":" + lora_path
                                                    : "tiny:" + std::to_string(param_int(params, "tiny_hidden_size")) +
                                                          ":" + std::to_string(param_int(params, "tiny_layers")) + ":" +
                                                          std::to_string(param_int(params, "tiny_seed")));
    key += ":" + params.at("signal_tokens").dump() + ":" + ctx.device + ":" + ctx.dtype;
    auto create = [&] { return build_bundle(params, ctx, model_path, tokenizer_path, lora_path); };
    bundle_ = ctx.shared_module<LlmBundle>(key, create);
    // Configure has no warning channel: the first run reports it.
    if (model_path.empty() && !tiny)
      pending_warning_ =
          "no model given; using the tiny built-in preset (random weights, byte tokenizer); set "
          "preset: tiny to choose it without this warning";

    slots_ = media_slots(params);
    const std::string chat = param_string(params, "chat_template");
    template_ = chat.find("{user}") != std::string::npos ? custom_chat_template(chat) : builtin_chat_template(chat);
    if (params.contains("system") && !params["system"].is_null())
      template_.default_system = params["system"].get<std::string>();
    repair_ = signal_repair_from_name(param_string(params, "signal_repair"));
    signal_layers_ = params.at("signal_layers").get<std::vector<int64_t>>();
    if (signal_layers_.empty())
      throw_config_error("bad_signal_layers", "llm: signal_layers must name at least one layer");
    check_signal_layers(signal_layers_, bundle_->model->options().num_hidden_layers + 1);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    if (!pending_warning_.empty()) {
      ctx.warning(pending_warning_);
      pending_warning_.clear();
    }
    auto& model = bundle_->model;
    auto& tokenizer = *bundle_->tokenizer;
    const int64_t hidden = model->options().hidden_size;
    const auto device = at::Device(device_);

    // The user text, with a marker prepended for each medium given without one.
    std::string user = input(inputs, "prompt").text();
    std::vector<const MediaSlot*> present;
    for (const auto& slot : slots_) {
      if (!optional_input(inputs, slot.name)) continue;
      present.push_back(&slot);
      if (user.find(slot.marker) == std::string::npos) user = slot.marker + " " + user;
    }
    const std::string prompt = template_.apply(user, template_.default_system);

    // Pieces: text between markers, and media rows.
    std::vector<at::Tensor> pieces;
    std::vector<int64_t> prompt_ids;
    std::vector<int64_t> context;  // the prompt's last token when it is text: the reply is decoded after it
    auto add_text = [&](const std::string& text) {
      if (text.empty()) return;
      auto ids = tokenizer.encode(text);
      if (ids.empty()) return;
      context = {ids.back()};
      prompt_ids.insert(prompt_ids.end(), ids.begin(), ids.end());
      pieces.push_back(model->embed(at::tensor(ids, at::kLong).unsqueeze(0).to(device)));
    };
    if (param_bool(params_, "add_bos") && tokenizer.bos_id()) {
      prompt_ids.push_back(*tokenizer.bos_id());
      pieces.push_back(
          model->embed(at::full({1, 1}, *tokenizer.bos_id(), at::TensorOptions().dtype(at::kLong).device(device))));
    }
    std::vector<std::string> markers;
    for (const auto* s : present) markers.push_back(s->marker);
    for (const auto& piece : split_at_markers(prompt, markers)) {
      add_text(piece.text);
      if (piece.medium < 0) break;
      const MediaSlot* slot = present[piece.medium];
      add_text(slot->begin);
      pieces.push_back(media_rows(inputs.at(slot->name), slot->name, hidden, device)
                           .to(model->model->embed_tokens->weight.scalar_type()));
      context.clear();
      add_text(slot->end);
    }
    for (const auto& slot : slots_)
      if (!optional_input(inputs, slot.name) && prompt.find(slot.marker) != std::string::npos)
        ctx.warning("the prompt holds the marker " + slot.marker + " but no " + slot.name + " input is connected");
    if (pieces.empty()) throw_input_error("empty_prompt", "llm: the prompt is empty and no BOS token is added");
    at::Tensor prompt_embeds = at::cat(pieces, 1);
    const int64_t positions = model->options().max_position_embeddings;
    if (prompt_embeds.size(1) >= positions)
      throw_input_error("prompt_too_long", "llm: the prompt is " + std::to_string(prompt_embeds.size(1)) +
                                               " tokens (media rows included), but the model's context is " +
                                               std::to_string(positions) + " positions");

    LlamaGenerateOptions options;
    auto& gen = options.generation;
    gen.max_new_tokens = param_int(params_, "max_new_tokens");
    gen.sampling.do_sample = param_bool(params_, "do_sample");
    gen.sampling.temperature = param_float(params_, "temperature");
    gen.sampling.top_k = param_int(params_, "top_k");
    gen.sampling.top_p = param_float(params_, "top_p");
    gen.sampling.repetition_penalty = param_float(params_, "repetition_penalty");
    const int64_t seed = param_int(params_, "seed");
    gen.seed = seed >= 0 ? static_cast<uint64_t>(seed) : ctx.seed;
    if (param_bool(params_, "stop_at_eos")) {
      if (tokenizer.eos_id()) gen.stop_ids.push_back(*tokenizer.eos_id());
      for (auto id : model->options().eos_token_id) gen.stop_ids.push_back(id);
    }
    for (auto id : params_.at("stop_ids").get<std::vector<int64_t>>()) gen.stop_ids.push_back(id);
    for (const auto& token : template_.stop_tokens)
      if (auto id = tokenizer.token_to_id(token)) gen.stop_ids.push_back(*id);
    gen.stop_strings = template_.stop_strings;
    for (const auto& s : params_.at("stop_strings").get<std::vector<std::string>>()) gen.stop_strings.push_back(s);
    options.use_cache = param_bool(params_, "use_cache");

    const auto& signals = bundle_->signals;
    std::vector<int64_t> signal_ids;
    size_t longest_span = 0;
    for (const auto& m : signals) {
      signal_ids.insert(signal_ids.end(), m.ids.begin(), m.ids.end());
      longest_span = std::max(longest_span, m.ids.size());
    }
    if (!signals.empty()) options.state_layers = signal_layers_;
    options.extra_capacity = static_cast<int64_t>(longest_span);

    GenerationHooks hooks;
    auto tokenizer_ptr = bundle_->tokenizer;
    hooks.decode = [tokenizer_ptr, signal_ids, context](const std::vector<int64_t>& ids) {
      std::vector<int64_t> visible;
      for (auto id : ids)
        if (std::find(signal_ids.begin(), signal_ids.end(), id) == signal_ids.end()) visible.push_back(id);
      return decode_continuation(*tokenizer_ptr, context, visible);
    };
    hooks.on_token = [&ctx](int64_t, const std::string& text) {
      if (!text.empty() && ctx.stream) ctx.stream(text);
    };
    hooks.progress = [&ctx](int64_t done, int64_t total) {
      ctx.check_cancelled();
      ctx.report_progress(std::min(done, total), total, "tokens");
    };
    auto warn = [&ctx](const std::string& message) { ctx.warning(message); };
    if (!signals.empty() && repair_ == SignalRepair::Complete) install_signal_constraints(hooks, signals, warn);

    auto generation = llama_generate(model, prompt_embeds, prompt_ids, options, hooks);
    const auto& tokens = generation.result.tokens;

    PortValues out;
    out["text"] = Value::text(generation.result.text);
    out["tokens"] = Value::tokens(at::tensor(tokens, at::kLong).reshape({1, static_cast<int64_t>(tokens.size())}));
    if (!signals.empty()) {
      auto found = extract_signal_outputs(signals, tokens, generation.predicting_states,
                                          model->model->embed_tokens->weight, repair_, warn);
      for (auto& [name, signal] : found) {
        Value value = Value::embedding(signal.hidden_states.to(at::kCPU, at::kFloat),
                                       signal.mask.defined() ? signal.mask.to(at::kCPU) : at::Tensor());
        out[name] = value.with_aux("input_embeds", signal.input_embeds.to(at::kCPU, at::kFloat));
      }
    }
    return out;
  }

  torch::nn::Module* module() override { return bundle_ ? bundle_->model.get() : nullptr; }
  bool cacheable() const override { return true; }

 private:
  // The rows of an embedding input [1, N, D] (or [N, D] / [1, D]), without masked-out rows.
  static at::Tensor media_rows(const Value& value, const std::string& name, int64_t hidden, const at::Device& device) {
    at::Tensor rows = value.tensor();
    if (rows.dim() == 2) rows = rows.unsqueeze(0);  // [N, D], e.g. one pooled vector per medium
    if (rows.dim() != 3 || rows.size(0) != 1 || rows.size(2) != hidden) {
      std::ostringstream shape;
      shape << rows.sizes();
      throw_input_error("bad_media_embedding", "llm: input '" + name + "' must be an embedding [1, N, " +
                                                   std::to_string(hidden) + "] (the LLM width); got " + shape.str() +
                                                   " (add an input_projection stage)");
    }
    if (value.mask().defined()) {
      auto keep = value.mask().reshape({-1}).to(at::kBool).to(at::kCPU);
      rows = rows.index_select(1, keep.nonzero().reshape({-1}).to(rows.device()));
    }
    return rows.to(device, at::kFloat);
  }

  Json params_;
  std::string device_ = "cpu";
  std::shared_ptr<LlmBundle> bundle_;
  std::vector<MediaSlot> slots_;
  ChatTemplate template_;
  SignalRepair repair_ = SignalRepair::Complete;
  std::vector<int64_t> signal_layers_;
  std::string pending_warning_;
};

StagePorts llm_ports(const Json& params) {
  StagePorts ports;
  ports.inputs.push_back(in_port("prompt", ValueType::Text, "the user message (the chat template wraps it)"));
  if (params.contains("media") && params["media"].is_object()) {
    for (const auto& kv : params["media"].items()) {
      ports.inputs.push_back(optional_in_port(kv.key(), ValueType::Embedding,
                                              "[1, N, hidden] rows placed at the medium's marker in the prompt"));
    }
  }
  ports.outputs.push_back(out_port("text", ValueType::Text, "the generated text (without signal tokens)"));
  ports.outputs.push_back(out_port("tokens", ValueType::Tokens, "[1, n] the generated token ids"));
  if (params.contains("signal_tokens") && params["signal_tokens"].is_object()) {
    for (const auto& kv : params["signal_tokens"].items()) {
      ports.outputs.push_back(
          out_port(kv.key(), ValueType::Embedding,
                   "[S, K, hidden] states before each of the modality's signal tokens (one row per "
                   "span), aux input_embeds [S, K, hidden]; absent when the model did not emit them"));
    }
  }
  return ports;
}

StageInfo llm_info() {
  StageInfo info;
  info.type = "llm";
  info.description =
      "Llama-family causal LM (transformers LlamaForCausalLM folders or llama2.c .bin files) with a KV cache, "
      "greedy or sampled decoding, stop ids/strings, streaming, chat templates, media embeddings at prompt markers "
      "and NExT-GPT signal-token outputs. With preset: tiny it builds a tiny model with seeded random weights and a "
      "byte tokenizer; an empty model does the same with a warning. A model path that does not exist is an error. "
      "The model computes in the pipeline's dtype (RMSNorm, rotary angles and attention softmax in float32, as "
      "transformers does); media rows are cast to it; logits and the signal outputs are float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      param_spec("model", ParamType::Path, "",
                 "transformers Llama folder (config.json + model.safetensors or its sharded index) or llama2.c .bin; "
                 "empty = the tiny preset, with a warning"),
      choice_param("preset", "none", {"none", "tiny"},
                   "tiny: a small model with seeded random weights and a byte tokenizer (leave model empty)"),
      param_spec(
          "tokenizer", ParamType::Path, "",
          "tokenizer file or folder (tokenizer.json, tokenizer.model, llama2.c .bin); default: beside the model"),
      param_spec("tokenizer_family", ParamType::String, "", "tokenizer family when the files are ambiguous"),
      param_spec("lora", ParamType::Path, "", "PEFT LoRA adapter folder merged into the weights at load"),
      param_spec(
          "chat_template", ParamType::String, "none",
          "none, vicuna_v0 (NExT-GPT), vicuna_v1.1, llama2, llama3, chatml, or a pattern with {system} and {user}"),
      param_spec("system", ParamType::String, nullptr, "system text (default: the template's own)"),
      param_spec("add_bos", ParamType::Bool, true, "start the prompt with the tokenizer's BOS token"),
      ranged_param("max_new_tokens", ParamType::Int, 128, 1, 1 << 20, "most tokens to generate"),
      param_spec("do_sample", ParamType::Bool, false, "sample (true) or greedy (false)"),
      ranged_param("temperature", ParamType::Float, 1.0, 0.0, 100.0, "sampling temperature (0 = greedy)"),
      ranged_param("top_k", ParamType::Int, 0, 0, 1 << 20, "keep the k most likely tokens (0 = off)"),
      ranged_param("top_p", ParamType::Float, 1.0, 0.0, 1.0, "nucleus sampling mass (1 = off)"),
      ranged_param("repetition_penalty", ParamType::Float, 1.0, 0.01, 100.0,
                   "transformers' repetition penalty (1 = off)"),
      ranged_param("seed", ParamType::Int, -1, -1, 9.2e18, "sampling seed; -1 = the pipeline's seed for this stage"),
      param_spec("stop_at_eos", ParamType::Bool, true, "stop at the tokenizer's and the model's EOS ids"),
      ranged_param("stop_ids", ParamType::IntList, Json::array(), 0, 2147483647.0,
                   "more token ids that end generation"),
      param_spec("stop_strings", ParamType::StringList, Json::array(),
                 "text that ends generation (the output is cut before it); added to the template's"),
      param_spec("use_cache", ParamType::Bool, true,
                 "decode with the KV cache (false re-runs the whole sequence per token)"),
      param_spec("media", ParamType::Object, Json::object(),
                 "modality -> marker (\"<image>\") or {marker, begin, end}: one optional embedding input per modality"),
      param_spec("media_begin", ParamType::String, "", "text before every medium's rows (NExT-GPT: <Img>)"),
      param_spec("media_end", ParamType::String, "", "text after every medium's rows (NExT-GPT: </Img>)"),
      param_spec("signal_tokens", ParamType::Object, Json::object(),
                 "modality -> list of signal tokens (image: [\"[IMG0]\", ...]); added to the tokenizer, and to the "
                 "embeddings (initialised to the mean row) when the weights lack them; one output port per modality"),
      ranged_param("signal_layers", ParamType::IntList, Json::array({-1}), -4096, 4096,
                   "hidden-state indices summed for the signal outputs (0 = embeddings, -1 = final normed output)"),
      choice_param("signal_repair", "complete", {"complete", "pad", "drop"},
                   "a partial or garbled signal span: complete = impose the rest of the token list; pad = take it as "
                   "emitted, cut or zero-padded to K rows (mask 0); drop = discard it; each with a warning"),
      ranged_param("tiny_hidden_size", ParamType::Int, 64, 8, 4096, "width of the tiny preset"),
      ranged_param("tiny_layers", ParamType::Int, 2, 1, 64, "layers of the tiny preset"),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the tiny preset's weights"),
  };
  info.ports_for = llm_ports;
  info.ports = llm_ports(Json::object());
  info.create = [] { return std::make_unique<LlmStage>(); };
  info.check_params = check_llm_params;
  return info;
}

A2A_REGISTER_STAGE(llm_info);

}  // namespace
}  // namespace a2a
