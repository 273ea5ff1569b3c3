#pragma once
// Token selection and stopping for autoregressive generation, independent of the model:
// greedy or sampled choice with transformers' logits processors (repetition penalty, then temperature,
// top-k, top-p), stop ids, stop strings, max_new_tokens, and a streaming text decoder.
#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace a2a {

struct TokenSamplingOptions {
  bool do_sample = false;           // false: greedy (argmax after the repetition penalty)
  double temperature = 1.0;         // sampling only; 0 means greedy
  int64_t top_k = 0;                // sampling only; 0 = off
  double top_p = 1.0;               // sampling only; 1 = off
  double repetition_penalty = 1.0;  // 1 = off; applies to every id of the history, prompt included
};

struct GenerationOptions {
  TokenSamplingOptions sampling;
  int64_t max_new_tokens = 128;
  std::vector<int64_t> stop_ids;          // generation ends after one of these (it is not part of the text)
  std::vector<std::string> stop_strings;  // generation ends when the text contains one; the text is cut before it
  uint64_t seed = 0;
};

// Applies the repetition penalty and, when sampling, temperature, top-k and top-p to logits [V] in
// transformers' order and with its tie rules. Removed entries become -inf.
at::Tensor process_logits(const at::Tensor& logits, const std::vector<int64_t>& history,
                          const TokenSamplingOptions& options);

// Chooses tokens from logits with its own seeded generator: same seed, same choices.
class TokenSampler {
 public:
  TokenSampler(TokenSamplingOptions options, uint64_t seed);
  int64_t next(const at::Tensor& logits, const std::vector<int64_t>& history);

 private:
  TokenSamplingOptions options_;
  at::Generator generator_;
};

// Follows the text of the generated tokens for stop strings and streaming. The text is always decoded
// from all generated ids (SentencePiece spaces and multi-byte characters come out right); what is
// handed out as ready never includes an incomplete UTF-8 sequence or the start of a possible stop string.
class StreamingText {
 public:
  using Decode = std::function<std::string(const std::vector<int64_t>& ids)>;
  StreamingText(Decode decode, std::vector<std::string> stop_strings);

  // Adds a token; returns true when the text now contains a stop string.
  bool push(int64_t token);
  // Text not handed out before that is safe to show now.
  std::string take_ready();
  // At the end: the rest of the text (cut before a stop string).
  std::string take_rest();
  // The full text so far, cut before a stop string when one was found.
  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }

 private:
  size_t safe_length() const;
  Decode decode_;
  std::vector<std::string> stop_strings_;
  std::vector<int64_t> ids_;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

struct GenerationResult {
  std::vector<int64_t> tokens;  // the new tokens, a final stop id included
  std::string text;             // their text, without a stop id's text and cut before a stop string
  std::string stop_reason;      // "stop_id", "stop_string", "max_new_tokens", "context_full"
};

struct GenerationHooks {
  // Feeds the chosen token to the model and returns the logits [V] for the next position, or an
  // undefined tensor when the context is full.
  std::function<at::Tensor(int64_t token)> feed;
  // Decodes generated ids to text (for stop strings and streaming); may be empty when neither is used.
  StreamingText::Decode decode;
  // Called once per token with the text that became ready (may be empty), and once more at the end
  // with token -1 and the text held back until then, if any.
  std::function<void(int64_t token, const std::string& ready_text)> on_token;
  // Replaces the chosen token (a signal-token span being completed); empty = keep the choice.
  std::function<int64_t(int64_t chosen, const std::vector<int64_t>& generated)> constrain;
  // True while the caller needs more tokens even past max_new_tokens (an open signal span).
  std::function<bool(const std::vector<int64_t>& generated)> must_continue;
  // Called between tokens; throws to cancel.
  std::function<void(int64_t done, int64_t total)> progress;
};

// The decoding loop: choose, stop or feed, repeat. first_logits [V] are the prompt's last logits;
// history seeds the repetition penalty (the prompt ids).
GenerationResult generate_tokens(const at::Tensor& first_logits, std::vector<int64_t> history,
                                 const GenerationOptions& options, const GenerationHooks& hooks);

}  // namespace a2a
