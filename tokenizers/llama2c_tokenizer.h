#pragma once
// The tokenizer file of karpathy's llama2.c (tokenizer.bin / tok512.bin), with run.c's semantics:
// int32 max_token_length, then per token float32 score, int32 length, bytes. Encoding adds a dummy-prefix
// " " token for non-empty text and merges adjacent pieces by best score; unknown characters fall back to
// byte tokens (<0x00> is id 3). BOS = 1, EOS = 2.
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizers/added_tokens.h"
#include "tokenizers/score_merge.h"
#include "tokenizers/tokenizer.h"

namespace a2a {

class Llama2cTokenizer : public Tokenizer {
 public:
  // Throws a2a::Error naming the file when it is missing or truncated.
  explicit Llama2cTokenizer(const std::string& path);

  std::vector<int64_t> encode(const std::string& text) const override;
  // run.c's encode(text, bos, eos).
  std::vector<int64_t> encode(const std::string& text, bool bos, bool eos) const;
  // Drops the leading space of the piece that starts the text (the first id, or the id after BOS), as
  // run.c does after BOS, so that decode(encode(text)) == text.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  // The piece as run.c prints it in the middle of a stream ("<0x0A>" becomes a newline).
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  std::optional<int64_t> bos_id() const override { return 1; }
  std::optional<int64_t> eos_id() const override { return 2; }
  std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) override;

  float score(int64_t id) const { return scores_.at(id); }
  int max_token_length() const { return max_token_length_; }

 private:
  void encode_plain(const std::string& text, std::vector<int64_t>& out) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> ids_;
  int max_token_length_ = 0;
  tokenizers::ScoredMerges merges_;
  tokenizers::AddedTokens added_;
};

}  // namespace a2a
