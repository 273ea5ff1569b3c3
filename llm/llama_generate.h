#pragma once
// Generation with a Llama model: prefill of the prompt embeddings into a preallocated KV cache, then
// one-token decode steps (or, for comparison, an uncached loop that re-runs the whole sequence), while
// collecting the hidden states that NExT-GPT's signal tokens need.
#include <ATen/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "llm/generation.h"
#include "llm/llama.h"

namespace a2a {

struct LlamaGenerateOptions {
  GenerationOptions generation;
  bool use_cache = true;
  // Indices into transformers' hidden_states list (0 = embeddings, -1 = final normed output); when not
  // empty, the sum of these layers is kept for the position that predicted each generated token.
  std::vector<int64_t> state_layers;
  int64_t extra_capacity = 0;  // cache positions beyond prompt + max_new_tokens (forced signal tokens)
};

struct LlamaGeneration {
  GenerationResult result;
  // [n_generated, hidden]: row g is the summed state of the position just before generated token g
  // (the state that predicted it). Undefined without state_layers.
  at::Tensor predicting_states;
};

// prompt_embeds [1, L, hidden]; prompt_ids seed the repetition penalty. hooks.feed is provided here.
LlamaGeneration llama_generate(LlamaForCausalLM& model, const at::Tensor& prompt_embeds,
                               const std::vector<int64_t>& prompt_ids, const LlamaGenerateOptions& options,
                               GenerationHooks hooks = {});

// ---------------------------------------------------------------------------------------------------
// Signal tokens: per modality, the token list the model emits to call a decoder ([IMG0]..[IMG3]).

struct SignalModality {
  std::string name;                 // "image"
  std::vector<std::string> tokens;  // "[IMG0]", ...
  std::vector<int64_t> ids;         // their ids
};

enum class SignalRepair {
  Complete,  // once the first token is emitted, the rest of the list is imposed (even past max_new_tokens)
  Pad,       // spans are taken as emitted: cut to K rows or padded with zero rows (mask 0)
  Drop,      // a span that is not exactly the list is discarded
};
SignalRepair signal_repair_from_name(const std::string& name);  // complete | pad | drop

// For Complete mode: the constrain/must_continue hooks that impose open spans. Warnings (a different
// token was chosen inside a span) go to `warn`.
void install_signal_constraints(GenerationHooks& hooks, const std::vector<SignalModality>& modalities,
                                std::function<void(const std::string&)> warn);

struct SignalOutput {
  at::Tensor hidden_states;  // [S, K, hidden]: one row per span the model emitted
  at::Tensor input_embeds;   // [S, K, hidden]: input embeddings of the modality's signal tokens
  at::Tensor mask;           // [S, K] (1 = real row); undefined when every span is complete
};

// Finds each modality's spans in the generated tokens (a span starts at the list's first token, or at
// any of its tokens outside a span) and gathers the predicting states. Modalities without spans are
// absent from the result. Partial or garbled spans are handled per `repair`, with a warning each.
std::map<std::string, SignalOutput> extract_signal_outputs(const std::vector<SignalModality>& modalities,
                                                           const std::vector<int64_t>& generated,
                                                           const at::Tensor& predicting_states,
                                                           const at::Tensor& embedding_weight, SignalRepair repair,
                                                           const std::function<void(const std::string&)>& warn);

}  // namespace a2a
