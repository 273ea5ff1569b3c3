#include "llm/llama.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "base/error.h"
#include "base/path_query.h"
#include "llm/llama2c.h"
#include "llm/lora.h"
#include "nn/attention.h"
#include "weights/component_resolver.h"
#include "weights/config_reader.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"

namespace a2a {

namespace fs = std::filesystem;

namespace {

// An id field of config.json: an integer, a list whose first entry is used, or null.
std::optional<int64_t> optional_id(const ConfigReader& c, const char* key, std::optional<int64_t> fallback) {
  if (!c.contains(key)) return fallback;
  if (c.is_null(key)) return std::nullopt;
  if (c.json().at(key).is_array()) {
    const auto ids = c.require<std::vector<int64_t>>(key);
    return ids.empty() ? std::nullopt : std::optional<int64_t>(ids.front());
  }
  return c.require<int64_t>(key);
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor repeat_kv(const at::Tensor& x, int64_t repeats) {
  if (repeats == 1) return x;
  const auto b = x.size(0), heads = x.size(1), len = x.size(2), dim = x.size(3);
  return x.unsqueeze(2).expand({b, heads, repeats, len, dim}).reshape({b, heads * repeats, len, dim});
}

}  // namespace

LlamaOptions LlamaOptions::from_json(const nlohmann::json& config) {
  return from_config(ConfigReader(config.is_null() ? nlohmann::json::object() : config, "config.json"));
}

LlamaOptions LlamaOptions::from_config(const ConfigReader& c) {
  const nlohmann::json& j = c.json();
  LlamaOptions o;
  o.vocab_size = c.get_or<int64_t>("vocab_size", o.vocab_size);
  o.hidden_size = c.get_or<int64_t>("hidden_size", o.hidden_size);
  o.intermediate_size = c.get_or<int64_t>("intermediate_size", o.intermediate_size);
  o.num_hidden_layers = c.get_or<int64_t>("num_hidden_layers", o.num_hidden_layers);
  o.num_attention_heads = c.get_or<int64_t>("num_attention_heads", o.num_attention_heads);
  o.num_key_value_heads = c.get_or<int64_t>("num_key_value_heads", o.num_attention_heads);
  o.hidden_act = c.get_or<std::string>("hidden_act", o.hidden_act);
  o.max_position_embeddings = c.get_or<int64_t>("max_position_embeddings", o.max_position_embeddings);
  o.initializer_range = c.get_or<double>("initializer_range", o.initializer_range);
  o.rms_norm_eps = c.get_or<double>("rms_norm_eps", o.rms_norm_eps);
  o.use_cache = c.get_or<bool>("use_cache", o.use_cache);
  o.pad_token_id = optional_id(c, "pad_token_id", o.pad_token_id);
  o.bos_token_id = optional_id(c, "bos_token_id", o.bos_token_id);
  if (c.contains("eos_token_id")) {
    o.eos_token_id.clear();
    if (c.json().at("eos_token_id").is_array())
      o.eos_token_id = c.require<std::vector<int64_t>>("eos_token_id");
    else if (!c.is_null("eos_token_id"))
      o.eos_token_id.push_back(c.require<int64_t>("eos_token_id"));
  }
  o.pretraining_tp = c.get_or<int64_t>("pretraining_tp", o.pretraining_tp);
  o.tie_word_embeddings = c.get_or<bool>("tie_word_embeddings", o.tie_word_embeddings);
  o.rope_theta = c.get_or<double>("rope_theta", o.rope_theta);
  if (auto it = j.find("rope_scaling"); it != j.end() && it->is_object()) {
    const ConfigReader r = c.child("rope_scaling");
    LlamaRopeScaling s;
    s.rope_type = r.get_or<std::string>("rope_type", r.get_or<std::string>("type", s.rope_type));
    s.factor = r.get_or<double>("factor", s.factor);
    s.low_freq_factor = r.get_or<double>("low_freq_factor", s.low_freq_factor);
    s.high_freq_factor = r.get_or<double>("high_freq_factor", s.high_freq_factor);
    s.original_max_position_embeddings =
        r.get_or<int64_t>("original_max_position_embeddings", s.original_max_position_embeddings);
    o.rope_scaling = s;
  }
  o.attention_bias = c.get_or<bool>("attention_bias", o.attention_bias);
  o.attention_dropout = c.get_or<double>("attention_dropout", o.attention_dropout);
  o.mlp_bias = c.get_or<bool>("mlp_bias", o.mlp_bias);
  c.read("head_dim", o.head_dim);
  return o;
}

nlohmann::json LlamaOptions::to_json() const {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"vocab_size", vocab_size},
                      {"hidden_size", hidden_size},
                      {"intermediate_size", intermediate_size},
                      {"num_hidden_layers", num_hidden_layers},
                      {"num_attention_heads", num_attention_heads},
                      {"num_key_value_heads", num_key_value_heads},
                      {"hidden_act", hidden_act},
                      {"max_position_embeddings", max_position_embeddings},
                      {"initializer_range", initializer_range},
                      {"rms_norm_eps", rms_norm_eps},
                      {"use_cache", use_cache},
                      {"pretraining_tp", pretraining_tp},
                      {"tie_word_embeddings", tie_word_embeddings},
                      {"rope_theta", rope_theta},
                      {"attention_bias", attention_bias},
                      {"attention_dropout", attention_dropout},
                      {"mlp_bias", mlp_bias}};
  j["pad_token_id"] = pad_token_id ? nlohmann::json(*pad_token_id) : nlohmann::json();
  j["bos_token_id"] = bos_token_id ? nlohmann::json(*bos_token_id) : nlohmann::json();
  j["eos_token_id"] = eos_token_id.size() == 1 ? nlohmann::json(eos_token_id[0]) : nlohmann::json(eos_token_id);
  if (rope_scaling) {
    j["rope_scaling"] = {{"rope_type", rope_scaling->rope_type},
                         {"factor", rope_scaling->factor},
                         {"low_freq_factor", rope_scaling->low_freq_factor},
                         {"high_freq_factor", rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (head_dim) j["head_dim"] = *head_dim;
  return j;
}

void LlamaOptions::validate(const std::string& source) const {
  auto fail = [&](const std::string& what) {
    throw_input_error("bad_llama_config", (source.empty() ? std::string("Llama config") : source) + ": " + what);
  };
  if (vocab_size <= 0 || hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 ||
      num_attention_heads <= 0 || num_key_value_heads <= 0)
    fail("sizes must be positive");
  if (!head_dim && hidden_size % num_attention_heads != 0)
    fail("hidden_size " + std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
         std::to_string(num_attention_heads));
  if (num_attention_heads % num_key_value_heads != 0)
    fail("num_attention_heads " + std::to_string(num_attention_heads) + " is not a multiple of num_key_value_heads " +
         std::to_string(num_key_value_heads));
  if (head_size() % 2 != 0) fail("the head size must be even for rotary embeddings");
  if (hidden_act != "silu") fail("hidden_act '" + hidden_act + "' is not supported (only silu)");
  if (rope_scaling) {
    const auto& t = rope_scaling->rope_type;
    if (t != "default" && t != "linear" && t != "llama3")
      fail("rope_scaling type '" + t + "' is not supported (default, linear, llama3)");
    if (rope_scaling->factor <= 0) fail("rope_scaling.factor must be positive");
  }
}

at::Tensor llama_rope_inverse_frequencies(const LlamaOptions& options) {
  const int64_t dim = options.head_size();
  // Same float32 expression as transformers: base ** (arange(0, dim, 2).float() / dim).
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = 1.0 / at::pow(options.rope_theta, exponents);
  if (!options.rope_scaling || options.rope_scaling->rope_type == "default") return inv_freq;
  const auto& s = *options.rope_scaling;
  if (s.rope_type == "linear") return inv_freq / s.factor;
  // llama3: keep high frequencies, divide low ones by factor, blend in between.
  const double old_context = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_context / s.low_freq_factor;
  const double high_freq_wavelen = old_context / s.high_freq_factor;
  at::Tensor wavelen = 2 * M_PI / inv_freq;
  at::Tensor scaled = inv_freq / s.factor;
  at::Tensor smooth = (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  at::Tensor blended = (1 - smooth) * inv_freq / s.factor + smooth * inv_freq;
  at::Tensor out =
      at::where(wavelen < high_freq_wavelen, inv_freq, at::where(wavelen > low_freq_wavelen, scaled, blended));
  return out;
}

// ---------------------------------------------------------------------------------------------------
LlamaKVCache::LlamaKVCache(const LlamaOptions& options, int64_t batch, int64_t capacity,
                           const at::TensorOptions& tensor_options)
    : capacity_(capacity), batch_(batch) {
  for (int64_t i = 0; i < options.num_hidden_layers; ++i) {
    keys_.push_back(at::zeros({batch, options.num_key_value_heads, capacity, options.head_size()}, tensor_options));
    values_.push_back(at::zeros({batch, options.num_key_value_heads, capacity, options.head_size()}, tensor_options));
  }
}

std::pair<at::Tensor, at::Tensor> LlamaKVCache::append(int64_t layer, const at::Tensor& keys,
                                                       const at::Tensor& values) {
  const int64_t count = keys.size(2);
  if (length_ + count > capacity_) {
    throw_input_error("context_overflow", "the KV cache holds " + std::to_string(capacity_) + " positions; " +
                                              std::to_string(length_ + count) + " are needed");
  }
  if (keys.size(0) != batch_) {
    throw_input_error("cache_batch_mismatch", "the KV cache was made for batch " + std::to_string(batch_) +
                                                  ", the call has " + std::to_string(keys.size(0)));
  }
  keys_[layer].narrow(2, length_, count).copy_(keys);
  values_[layer].narrow(2, length_, count).copy_(values);
  return {keys_[layer].narrow(2, 0, length_ + count), values_[layer].narrow(2, 0, length_ + count)};
}

void LlamaKVCache::advance(int64_t count) { length_ += count; }

void LlamaKVCache::truncate(int64_t length) { length_ = std::max<int64_t>(0, std::min(length, length_)); }

// ---------------------------------------------------------------------------------------------------
LlamaAttentionImpl::LlamaAttentionImpl(const LlamaOptions& o)
    : num_heads(o.num_attention_heads), num_key_value_heads(o.num_key_value_heads), head_size(o.head_size()) {
  auto linear = [&](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(o.attention_bias));
  };
  q_proj = register_module("q_proj", linear(o.hidden_size, num_heads * head_size));
  k_proj = register_module("k_proj", linear(o.hidden_size, num_key_value_heads * head_size));
  v_proj = register_module("v_proj", linear(o.hidden_size, num_key_value_heads * head_size));
  o_proj = register_module("o_proj", linear(num_heads * head_size, o.hidden_size));
}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& cos, const at::Tensor& sin,
                                       const at::Tensor& mask, LlamaKVCache* cache, int64_t layer_index) {
  const int64_t batch = hidden.size(0), length = hidden.size(1);
  auto q = q_proj(hidden).view({batch, length, num_heads, head_size}).transpose(1, 2);
  auto k = k_proj(hidden).view({batch, length, num_key_value_heads, head_size}).transpose(1, 2);
  auto v = v_proj(hidden).view({batch, length, num_key_value_heads, head_size}).transpose(1, 2);
  auto c = cos.unsqueeze(1), s = sin.unsqueeze(1);
  q = q * c + rotate_half(q) * s;
  k = k * c + rotate_half(k) * s;
  if (cache) std::tie(k, v) = cache->append(layer_index, k, v);
  const int64_t repeats = num_heads / num_key_value_heads;
  k = repeat_kv(k, repeats);
  v = repeat_kv(v, repeats);
  auto out = scaled_dot_product_attention(q, k, v, mask, 1.0 / std::sqrt(static_cast<double>(head_size)),
                                          /*causal=*/!mask.defined() && length > 1);
  return o_proj(out.transpose(1, 2).reshape({batch, length, num_heads * head_size}));
}

LlamaMLPImpl::LlamaMLPImpl(const LlamaOptions& o) {
  auto linear = [&](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(o.mlp_bias));
  };
  gate_proj = register_module("gate_proj", linear(o.hidden_size, o.intermediate_size));
  up_proj = register_module("up_proj", linear(o.hidden_size, o.intermediate_size));
  down_proj = register_module("down_proj", linear(o.intermediate_size, o.hidden_size));
}

at::Tensor LlamaMLPImpl::forward(const at::Tensor& x) { return down_proj(at::silu(gate_proj(x)) * up_proj(x)); }

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaOptions& o) {
  self_attn = register_module("self_attn", LlamaAttention(o));
  mlp = register_module("mlp", LlamaMLP(o));
  input_layernorm = register_module("input_layernorm", LlamaRMSNorm(o.hidden_size, o.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", LlamaRMSNorm(o.hidden_size, o.rms_norm_eps));
}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& hidden, const at::Tensor& cos, const at::Tensor& sin,
                                          const at::Tensor& mask, LlamaKVCache* cache, int64_t layer_index) {
  auto h = hidden + self_attn(input_layernorm(hidden), cos, sin, mask, cache, layer_index);
  return h + mlp(post_attention_layernorm(h));
}

LlamaModelImpl::LlamaModelImpl(const LlamaOptions& o) : options(o) {
  o.validate();
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(o.vocab_size, o.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(o));
  norm = register_module("norm", LlamaRMSNorm(o.hidden_size, o.rms_norm_eps));
  inv_freq = llama_rope_inverse_frequencies(o);
}

LlamaOutput LlamaModelImpl::forward(const at::Tensor& inputs_embeds, const LlamaForwardOptions& call) {
  const int64_t batch = inputs_embeds.size(0), length = inputs_embeds.size(1);
  const int64_t past = call.cache ? call.cache->length() : 0;
  const auto device = inputs_embeds.device();
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(device);

  at::Tensor positions;
  at::Tensor mask;
  const bool padded = call.attention_mask.defined() && !call.attention_mask.to(at::kBool).all().item<bool>();
  if (call.attention_mask.defined()) {
    if (call.attention_mask.dim() != 2 || call.attention_mask.size(0) != batch ||
        call.attention_mask.size(1) != past + length) {
      throw_input_error("bad_attention_mask", "the attention mask must be [batch, cached + new positions] = [" +
                                                  std::to_string(batch) + ", " + std::to_string(past + length) + "]");
    }
  }
  if (padded) {
    auto keep_keys = call.attention_mask.to(device).to(at::kBool);  // [B, past + L]
    auto ids = keep_keys.to(at::kLong).cumsum(-1) - 1;
    positions = ids.masked_fill(keep_keys.logical_not(), 1).narrow(1, past, length);
    auto causal = at::ones({length, past + length}, long_options.dtype(at::kBool)).tril(past);
    auto keep = causal.unsqueeze(0).unsqueeze(0) & keep_keys.unsqueeze(1).unsqueeze(1);  // [B, 1, L, past + L]
    // The lowest value rather than -inf, as transformers does: a padding row stays finite. float32 whatever
    // the model's dtype: attention adds it to float32 scores (half precision cannot hold float's lowest).
    mask = at::zeros(keep.sizes(), inputs_embeds.options().dtype(at::kFloat))
               .masked_fill(keep.logical_not(), std::numeric_limits<float>::lowest());
  } else {
    positions = at::arange(past, past + length, long_options).unsqueeze(0).expand({batch, length});
  }

  auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.to(device).unsqueeze(0).unsqueeze(0);
  auto emb = at::cat({freqs, freqs}, -1);
  auto cos = emb.cos().to(inputs_embeds.scalar_type());
  auto sin = emb.sin().to(inputs_embeds.scalar_type());

  LlamaOutput out;
  at::Tensor hidden = inputs_embeds;
  for (size_t i = 0; i < layers->size(); ++i) {
    if (call.output_hidden_states) out.hidden_states.push_back(hidden);
    hidden =
        layers->ptr<LlamaDecoderLayerImpl>(i)->forward(hidden, cos, sin, mask, call.cache, static_cast<int64_t>(i));
  }
  hidden = norm(hidden);
  if (call.output_hidden_states) out.hidden_states.push_back(hidden);
  if (call.cache) call.cache->advance(length);
  out.last_hidden_state = hidden;
  return out;
}

// ---------------------------------------------------------------------------------------------------
LlamaForCausalLMImpl::LlamaForCausalLMImpl(const LlamaOptions& o) {
  model = register_module("model", LlamaModel(o));
  if (!o.tie_word_embeddings) {
    lm_head = register_module("lm_head",
                              torch::nn::Linear(torch::nn::LinearOptions(o.hidden_size, o.vocab_size).bias(false)));
  }
}

at::Tensor LlamaForCausalLMImpl::classifier_weight() { return lm_head ? lm_head->weight : model->embed_tokens->weight; }

at::Tensor LlamaForCausalLMImpl::embed(const at::Tensor& input_ids) {
  const int64_t vocab = model->embed_tokens->weight.size(0);
  if (input_ids.numel() > 0) {
    const auto lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab) {
      throw_input_error("token_out_of_range", "token id " + std::to_string(lo < 0 ? lo : hi) +
                                                  " is outside the model's vocabulary of " + std::to_string(vocab));
    }
  }
  return model->embed_tokens(input_ids);
}

LlamaOutput LlamaForCausalLMImpl::forward_embeds(const at::Tensor& inputs_embeds, const LlamaForwardOptions& call) {
  if (inputs_embeds.dim() != 3 || inputs_embeds.size(2) != model->options.hidden_size) {
    throw_input_error("bad_inputs_embeds", "the Llama model expects input embeddings [B, L, " +
                                               std::to_string(model->options.hidden_size) + "]");
  }
  LlamaOutput out = model->forward(inputs_embeds, call);
  auto h = call.last_logits_only ? out.last_hidden_state.narrow(1, out.last_hidden_state.size(1) - 1, 1)
                                 : out.last_hidden_state;
  out.logits = at::linear(h, classifier_weight()).to(at::kFloat);
  return out;
}

LlamaOutput LlamaForCausalLMImpl::forward_ids(const at::Tensor& input_ids, const LlamaForwardOptions& call) {
  return forward_embeds(embed(input_ids), call);
}

at::Tensor LlamaForCausalLMImpl::forward(const at::Tensor& input_ids) { return forward_ids(input_ids).logits; }

LlamaKVCache LlamaForCausalLMImpl::new_cache(int64_t batch, int64_t capacity) {
  return LlamaKVCache(model->options, batch, capacity, model->embed_tokens->weight.options());
}

void LlamaForCausalLMImpl::resize_token_embeddings(int64_t new_vocab_size) {
  torch::NoGradGuard no_grad;
  auto grow = [&](const at::Tensor& weight) {
    const int64_t extra = new_vocab_size - weight.size(0);
    auto mean = weight.mean(0, /*keepdim=*/true);
    return at::cat({weight, mean.expand({extra, weight.size(1)})}, 0).contiguous();
  };
  const int64_t current = model->embed_tokens->weight.size(0);
  if (new_vocab_size <= current) return;
  model->embed_tokens->weight.set_data(grow(model->embed_tokens->weight));
  model->embed_tokens->options.num_embeddings(new_vocab_size);
  if (lm_head) {
    lm_head->weight.set_data(grow(lm_head->weight));
    lm_head->options.out_features(new_vocab_size);
  }
  model->options.vocab_size = new_vocab_size;
}

// ---------------------------------------------------------------------------------------------------
LoadOptions llama_load_options(const LlamaOptions& options, const std::string& source) {
  LoadOptions load;
  load.source = source;
  if (options.tie_word_embeddings) load.ignored_unexpected.push_back("lm_head.weight");
  // Checkpoints written by older transformers versions saved the rotary buffer of each layer.
  for (int64_t i = 0; i < options.num_hidden_layers; ++i)
    load.ignored_unexpected.push_back("model.layers." + std::to_string(i) + ".self_attn.rotary_emb.inv_freq");
  return load;
}

TensorMap read_transformers_weights(const std::string& folder) {
  return SafeTensorsCheckpoint::open(find_weights_file(folder))->tensors();
}

namespace {

// config.json + model.safetensors (or its sharded index), through the component resolver every model
// stage uses; the weights are copied with their mapped pages released as they go.
void load_transformers_llama(const std::string& folder, const std::string& device, const std::string& lora_adapter,
                             at::ScalarType dtype, LoadedLlama& loaded) {
  const ResolvedComponent files = resolve_component(folder, ComponentRequest{});
  loaded.options = LlamaOptions::from_config(files.config);
  loaded.options.validate(files.config_path);
  loaded.format = "transformers";
  loaded.model = LlamaForCausalLM(loaded.options);
  auto load = llama_load_options(loaded.options, folder);
  load.device = device;
  load.dtype = dtype;
  if (lora_adapter.empty()) {
    load_weights(*loaded.model, files.weights, load);
  } else {
    load_state_dict(*loaded.model, merge_lora(SafeTensorsCheckpoint::open(files.weights)->tensors(), lora_adapter),
                    load);
  }
}

}  // namespace

LoadedLlama load_llama(const std::string& path, const std::string& device, const std::string& lora_adapter,
                       at::ScalarType dtype) {
  if (!path_exists(path)) throw_input_error("missing_model", "model path '" + path + "' does not exist");
  LoadedLlama loaded;
  if (is_folder(path)) {
    load_transformers_llama(path, device, lora_adapter, dtype, loaded);
  } else {
    auto checkpoint = read_llama2c(path);
    loaded.options = checkpoint.options;
    TensorMap tensors = std::move(checkpoint.tensors);
    if (!lora_adapter.empty()) tensors = merge_lora(tensors, lora_adapter);
    loaded.format = "llama2c";
    loaded.model = LlamaForCausalLM(loaded.options);
    auto load = llama_load_options(loaded.options, path);
    load.device = device;
    load.dtype = dtype;
    load_state_dict(*loaded.model, tensors, load);
  }
  loaded.model->to(at::Device(device));
  loaded.model->eval();
  return loaded;
}

}  // namespace a2a
