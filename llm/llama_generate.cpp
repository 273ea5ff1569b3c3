#include "llm/llama_generate.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>

#include "base/error.h"

namespace a2a {

namespace {

std::vector<int64_t> resolve_layers(const std::vector<int64_t>& layers, int64_t count) {
  std::vector<int64_t> out;
  for (auto index : layers) {
    const int64_t resolved = index < 0 ? count + index : index;
    if (resolved < 0 || resolved >= count)
      throw_input_error("bad_signal_layer", "hidden-state layer " + std::to_string(index) + " is outside the model's " +
                                                std::to_string(count) + " hidden states (0 = embeddings, -1 = last)");
    out.push_back(resolved);
  }
  return out;
}

at::Tensor summed_last_state(const LlamaOutput& out, const std::vector<int64_t>& layers) {
  at::Tensor sum;
  for (auto index : layers) {
    auto& h = out.hidden_states[index];
    auto last = h.select(1, h.size(1) - 1);  // [B, D]
    sum = sum.defined() ? sum + last : last;
  }
  return sum.select(0, 0);
}

}  // namespace

LlamaGeneration llama_generate(LlamaForCausalLM& model, const at::Tensor& prompt_embeds,
                               const std::vector<int64_t>& prompt_ids, const LlamaGenerateOptions& options,
                               GenerationHooks hooks) {
  torch::NoGradGuard no_grad;
  if (prompt_embeds.dim() != 3 || prompt_embeds.size(0) != 1 || prompt_embeds.size(1) == 0)
    throw_input_error("bad_prompt", "generation takes one non-empty prompt [1, L, hidden]");
  const int64_t layer_count = model->options().num_hidden_layers + 1;
  const auto layers = resolve_layers(options.state_layers, layer_count);
  const bool collect = !layers.empty();

  LlamaForwardOptions call;
  call.output_hidden_states = collect;
  call.last_logits_only = true;
  std::vector<at::Tensor> states;

  const int64_t capacity = prompt_embeds.size(1) + options.generation.max_new_tokens + options.extra_capacity;
  auto cache = std::make_shared<LlamaKVCache>();
  at::Tensor sequence;  // uncached: every embedding so far
  if (options.use_cache) {
    *cache = model->new_cache(1, capacity);
    call.cache = cache.get();
  } else {
    sequence = prompt_embeds;
  }
  auto first = model->forward_embeds(prompt_embeds, call);
  if (collect) states.push_back(summed_last_state(first, layers));

  hooks.feed = [&, cache](int64_t token) -> at::Tensor {
    auto embedded =
        model->embed(at::full({1, 1}, token, at::TensorOptions().dtype(at::kLong).device(prompt_embeds.device())));
    LlamaOutput out;
    if (options.use_cache) {
      if (cache->length() >= cache->capacity()) return {};
      out = model->forward_embeds(embedded, call);
    } else {
      sequence = at::cat({sequence, embedded}, 1);
      out = model->forward_embeds(sequence, call);
    }
    if (collect) states.push_back(summed_last_state(out, layers));
    return out.logits.reshape({-1});
  };

  LlamaGeneration generation;
  generation.result = generate_tokens(first.logits.reshape({-1}), prompt_ids, options.generation, hooks);
  if (collect) {
    // The last token is not fed: keep one predicting state per generated token.
    states.resize(std::min(states.size(), generation.result.tokens.size()));
    generation.predicting_states =
        states.empty() ? at::empty({0, model->options().hidden_size}, prompt_embeds.options()) : at::stack(states, 0);
  }
  return generation;
}

// ---------------------------------------------------------------------------------------------------
SignalRepair signal_repair_from_name(const std::string& name) {
  if (name == "complete") return SignalRepair::Complete;
  if (name == "pad") return SignalRepair::Pad;
  if (name == "drop") return SignalRepair::Drop;
  throw_config_error("bad_signal_repair", "signal span repair '" + name + "' is not complete, pad or drop");
}

namespace {

// The modality and index of a signal token id, or {-1, -1}.
std::pair<int, int> find_signal(const std::vector<SignalModality>& modalities, int64_t id) {
  for (size_t m = 0; m < modalities.size(); ++m) {
    const auto& ids = modalities[m].ids;
    auto it = std::find(ids.begin(), ids.end(), id);
    if (it != ids.end()) return {static_cast<int>(m), static_cast<int>(it - ids.begin())};
  }
  return {-1, -1};
}

// The open span at the end of `generated`: modality and how many of its tokens are already out.
std::pair<int, size_t> open_span(const std::vector<SignalModality>& modalities, const std::vector<int64_t>& generated) {
  // Walk forward, tracking spans: under Complete they are always the exact list.
  int modality = -1;
  size_t filled = 0;
  for (auto id : generated) {
    if (modality >= 0) {
      ++filled;
      if (filled == modalities[modality].ids.size()) modality = -1;
      continue;
    }
    auto [m, index] = find_signal(modalities, id);
    (void)index;
    if (m >= 0) {
      modality = m;
      filled = 1;
      if (filled == modalities[m].ids.size()) modality = -1;
    }
  }
  return {modality, filled};
}

}  // namespace

void install_signal_constraints(GenerationHooks& hooks, const std::vector<SignalModality>& modalities,
                                std::function<void(const std::string&)> warn) {
  hooks.must_continue = [modalities](const std::vector<int64_t>& generated) {
    return open_span(modalities, generated).first >= 0;
  };
  hooks.constrain = [modalities, warn](int64_t chosen, const std::vector<int64_t>& generated) {
    auto [m, filled] = open_span(modalities, generated);
    if (m >= 0) {
      const int64_t expected = modalities[m].ids[filled];
      if (chosen != expected && warn)
        warn("the model chose token " + std::to_string(chosen) + " inside its " + modalities[m].name +
             " signal span; " + modalities[m].tokens[filled] + " was imposed to complete the span");
      return expected;
    }
    auto [start_m, index] = find_signal(modalities, chosen);
    if (start_m >= 0 && index > 0) {
      if (warn)
        warn("the model began a " + modalities[start_m].name + " signal span with " +
             modalities[start_m].tokens[index] + "; the span was restarted at " + modalities[start_m].tokens[0]);
      return modalities[start_m].ids[0];
    }
    return chosen;
  };
}

std::map<std::string, SignalOutput> extract_signal_outputs(const std::vector<SignalModality>& modalities,
                                                           const std::vector<int64_t>& generated,
                                                           const at::Tensor& predicting_states,
                                                           const at::Tensor& embedding_weight, SignalRepair repair,
                                                           const std::function<void(const std::string&)>& warn) {
  std::map<std::string, SignalOutput> outputs;
  const int64_t n = static_cast<int64_t>(generated.size());
  const int64_t available = predicting_states.defined() ? predicting_states.size(0) : 0;
  for (const auto& modality : modalities) {
    const int64_t k = static_cast<int64_t>(modality.ids.size());
    auto member = [&](int64_t id) {
      return std::find(modality.ids.begin(), modality.ids.end(), id) != modality.ids.end();
    };
    // Spans: runs of this modality's tokens, split where the first token starts a new list.
    std::vector<std::pair<int64_t, int64_t>> spans;  // start, length
    for (int64_t i = 0; i < n;) {
      if (!member(generated[i])) {
        ++i;
        continue;
      }
      int64_t j = i + 1;
      while (j < n && member(generated[j]) && generated[j] != modality.ids[0]) ++j;
      spans.emplace_back(i, j - i);
      i = j;
    }
    std::vector<at::Tensor> rows, masks;
    bool any_padded = false;
    for (size_t s = 0; s < spans.size(); ++s) {
      const auto [start, length] = spans[s];
      bool exact = length == k;
      for (int64_t i = 0; exact && i < k; ++i) exact = generated[start + i] == modality.ids[i];
      const int64_t usable = std::min({length, k, available - start});
      if (!exact) {
        std::string what = length < k ? "partial (" + std::to_string(length) + " of " + std::to_string(k) + " tokens)"
                           : length > k
                               ? "too long (" + std::to_string(length) + " tokens, " + std::to_string(k) + " expected)"
                               : "garbled (tokens out of order)";
        if (repair == SignalRepair::Drop) {
          if (warn)
            warn("dropped a " + what + " " + modality.name + " signal span at generated token " +
                 std::to_string(start));
          continue;
        }
        if (warn)
          warn("a " + what + " " + modality.name + " signal span at generated token " + std::to_string(start) +
               " was " + (length > k ? "cut" : "padded") + " to " + std::to_string(k) + " rows");
      }
      if (usable <= 0) continue;
      auto states = predicting_states.narrow(0, start, usable);
      auto mask = at::zeros({k}, predicting_states.options());
      mask.narrow(0, 0, usable).fill_(1);
      if (usable < k) {
        states = at::cat({states, at::zeros({k - usable, states.size(1)}, states.options())}, 0);
        any_padded = true;
      }
      rows.push_back(states);
      masks.push_back(mask);
    }
    if (rows.empty()) continue;
    SignalOutput out;
    out.hidden_states = at::stack(rows, 0);
    auto ids = at::tensor(modality.ids, at::kLong).to(embedding_weight.device());
    out.input_embeds =
        embedding_weight.index_select(0, ids).unsqueeze(0).expand({out.hidden_states.size(0), k, -1}).contiguous();
    if (any_padded) out.mask = at::stack(masks, 0);
    outputs[modality.name] = out;
  }
  return outputs;
}

}  // namespace a2a
