#include "llm/generation.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "base/error.h"

namespace a2a {

at::Tensor process_logits(const at::Tensor& logits_in, const std::vector<int64_t>& history,
                          const TokenSamplingOptions& options) {
  at::Tensor scores = logits_in.to(at::kFloat).reshape({-1}).clone();
  const int64_t vocab = scores.size(0);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (options.repetition_penalty != 1.0 && !history.empty()) {
    std::vector<int64_t> seen;
    for (auto id : history)
      if (id >= 0 && id < vocab) seen.push_back(id);
    if (!seen.empty()) {
      auto ids = at::tensor(seen, at::kLong).to(scores.device());
      auto picked = scores.gather(0, ids);
      picked = at::where(picked < 0, picked * options.repetition_penalty, picked / options.repetition_penalty);
      scores.scatter_(0, ids, picked);
    }
  }
  if (!options.do_sample || options.temperature <= 0) return scores;
  if (options.temperature != 1.0) scores = scores / options.temperature;
  if (options.top_k > 0) {
    const int64_t k = std::min(options.top_k, vocab);
    auto kth = std::get<0>(scores.topk(k)).index({k - 1});
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (options.top_p < 1.0) {
    auto sorted = scores.sort(/*dim=*/0, /*descending=*/false);
    auto sorted_logits = std::get<0>(sorted), sorted_indices = std::get<1>(sorted);
    auto cumulative = sorted_logits.softmax(0).cumsum(0);
    auto remove_sorted = cumulative <= (1.0 - options.top_p);
    remove_sorted.index_put_({vocab - 1}, false);  // always keep the most likely token
    auto remove = remove_sorted.scatter(0, sorted_indices, remove_sorted);
    scores = scores.masked_fill(remove, neg_inf);
  }
  return scores;
}

TokenSampler::TokenSampler(TokenSamplingOptions options, uint64_t seed)
    : options_(options), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

int64_t TokenSampler::next(const at::Tensor& logits, const std::vector<int64_t>& history) {
  auto scores = process_logits(logits, history, options_);
  if (!options_.do_sample || options_.temperature <= 0) return scores.argmax().item<int64_t>();
  auto probs = scores.softmax(0).to(at::kCPU);
  return at::multinomial(probs, 1, /*replacement=*/false, generator_).item<int64_t>();
}

// ---------------------------------------------------------------------------------------------------
StreamingText::StreamingText(Decode decode, std::vector<std::string> stop_strings)
    : decode_(std::move(decode)), stop_strings_(std::move(stop_strings)) {
  stop_strings_.erase(std::remove(stop_strings_.begin(), stop_strings_.end(), std::string()), stop_strings_.end());
}

bool StreamingText::push(int64_t token) {
  if (stopped_) return true;
  ids_.push_back(token);
  if (!decode_) return false;
  text_ = decode_(ids_);
  size_t cut = std::string::npos;
  for (const auto& stop : stop_strings_) {
    auto at = text_.find(stop);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    text_.resize(cut);
    stopped_ = true;
  }
  return stopped_;
}

size_t StreamingText::safe_length() const {
  size_t end = text_.size();
  if (!stopped_) {
    // Hold back the longest suffix that could still grow into a stop string.
    size_t hold = 0;
    for (const auto& stop : stop_strings_) {
      for (size_t n = std::min(stop.size() - 1, text_.size()); n > hold; --n) {
        if (text_.compare(text_.size() - n, n, stop, 0, n) == 0) {
          hold = n;
          break;
        }
      }
    }
    end -= hold;
    // Hold back an incomplete UTF-8 sequence at the end, and the replacement character a decoder
    // writes for one.
    static const std::string replacement = "\xEF\xBF\xBD";
    if (end >= 3 && text_.compare(end - 3, 3, replacement) == 0) end -= 3;
    size_t start = end;
    while (start > 0 && start + 4 > end && (static_cast<unsigned char>(text_[start - 1]) & 0xC0) == 0x80) --start;
    if (start > 0) {
      const unsigned char lead = static_cast<unsigned char>(text_[start - 1]);
      size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (lead >= 0xC0 && end - (start - 1) < need) end = start - 1;
    }
  }
  return std::max(end, emitted_);
}

std::string StreamingText::take_ready() {
  const size_t end = safe_length();
  std::string out = text_.substr(emitted_, end - emitted_);
  emitted_ = end;
  return out;
}

std::string StreamingText::take_rest() {
  std::string out = emitted_ < text_.size() ? text_.substr(emitted_) : std::string();
  emitted_ = text_.size();
  return out;
}

// ---------------------------------------------------------------------------------------------------
GenerationResult generate_tokens(const at::Tensor& first_logits, std::vector<int64_t> history,
                                 const GenerationOptions& options, const GenerationHooks& hooks) {
  GenerationResult result;
  TokenSampler sampler(options.sampling, options.seed);
  StreamingText stream(hooks.decode, options.stop_strings);
  at::Tensor logits = first_logits;
  result.stop_reason = "max_new_tokens";
  while (true) {
    const bool extend = hooks.must_continue && hooks.must_continue(result.tokens);
    if (!extend && static_cast<int64_t>(result.tokens.size()) >= options.max_new_tokens) break;
    if (!logits.defined()) {
      result.stop_reason = "context_full";
      break;
    }
    int64_t token = sampler.next(logits, history);
    if (hooks.constrain) token = hooks.constrain(token, result.tokens);
    result.tokens.push_back(token);
    history.push_back(token);
    if (hooks.progress) hooks.progress(static_cast<int64_t>(result.tokens.size()), options.max_new_tokens);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end()) {
      result.stop_reason = "stop_id";
      if (hooks.on_token) hooks.on_token(token, "");
      break;
    }
    const bool stop = stream.push(token);
    if (hooks.on_token) hooks.on_token(token, stream.take_ready());
    if (stop) {
      result.stop_reason = "stop_string";
      break;
    }
    const bool more = static_cast<int64_t>(result.tokens.size()) < options.max_new_tokens ||
                      (hooks.must_continue && hooks.must_continue(result.tokens));
    if (!more) break;
    logits = hooks.feed(token);
  }
  std::string rest = stream.take_rest();
  if (!rest.empty() && hooks.on_token) hooks.on_token(-1, rest);
  result.text = stream.text();
  return result;
}

}  // namespace a2a
