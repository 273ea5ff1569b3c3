#pragma once
// The tokenizer of the tiny presets: ids are the UTF-8 bytes of the text shifted by an offset, with
// start and end ids of their own and added tokens after the byte range. It needs no vocabulary file,
// so every preset runs offline.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizers/added_tokens.h"
#include "tokenizers/tokenizer.h"

namespace a2a {

struct ByteTokenizerOptions {
  int64_t byte_offset = 0;  // byte b is id b + byte_offset
  int64_t bos_id = 256;
  int64_t eos_id = 257;
  int64_t first_added_id = 258;  // the vocabulary size before added tokens
};

// A fixed-length encoding with its attention mask (1 = token, 0 = padding).
struct PaddedIds {
  std::vector<int64_t> ids;
  std::vector<int64_t> mask;
};

class ByteTokenizer : public Tokenizer {
 public:
  // The LLM preset's ids: bytes 0..255, 256 = BOS, 257 = EOS.
  static constexpr int64_t kBos = 256;
  static constexpr int64_t kEos = 257;

  explicit ByteTokenizer(ByteTokenizerOptions options = {});

  std::vector<int64_t> encode(const std::string& text) const override;  // no start or end id
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  std::optional<int64_t> bos_id() const override { return options_.bos_id; }
  std::optional<int64_t> eos_id() const override { return options_.eos_id; }
  std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) override;

  // [bos] + bytes (cut to max_length - 2) + [eos], padded with pad_id to max_length.
  PaddedIds encode_padded(const std::string& text, int64_t max_length, int64_t pad_id) const;

 private:
  ByteTokenizerOptions options_;
  tokenizers::AddedTokens added_;
};

}  // namespace a2a
