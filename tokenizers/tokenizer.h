#pragma once
// The tokenizer interface every tokenizer family implements.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace a2a {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text to ids, without BOS/EOS or padding. Special tokens written in the text are recognised.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  // Text to ids with the special tokens the model expects around one sequence (the post-processor of a
  // tokenizer.json, e.g. RoBERTa's <s> ... </s>; BOS for Llama; start/end tokens for CLIP).
  virtual std::vector<int64_t> encode_with_special(const std::string& text) const {
    std::vector<int64_t> ids;
    if (auto bos = bos_id()) ids.push_back(*bos);
    auto body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }
  // Ids to text. skip_special drops special/control tokens.
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const = 0;
  // The surface text of one id as it would appear when streamed after the previous ids.
  virtual std::string token_text(int64_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> token_to_id(const std::string& token) const = 0;
  virtual std::optional<int64_t> bos_id() const { return std::nullopt; }
  virtual std::optional<int64_t> eos_id() const { return std::nullopt; }
  virtual std::optional<int64_t> pad_id() const { return std::nullopt; }
  // Adds tokens matched verbatim in text before any other processing (signal tokens such as
  // "[IMG0]"). Returns their ids; existing tokens keep their ids.
  virtual std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) = 0;
  // Whether decode(encode(text)) == text for every text (false for CLIP: it lower-cases and cleans up).
  virtual bool lossless() const { return true; }
};

// Loads a tokenizer from a file or folder: tokenizer.json (Hugging Face), tokenizer.model or spiece.model
// (SentencePiece), vocab.json + merges.txt (CLIP or GPT-2 style, chosen by `family` when ambiguous:
// "clip" or "gpt2"), or a llama2.c tokenizer .bin. A folder is searched in that order. `family` may also
// force a format: "hf" (tokenizer.json), "sentencepiece", "llama2c". Throws a2a::Error on unknown formats.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, const std::string& family = "");

}  // namespace a2a
