#pragma once
// OpenAI CLIP's BPE tokenizer (the one Stable Diffusion's text encoder was trained with): ftfy and HTML
// clean-up, whitespace collapsing, lower-casing, a word-end "</w>" marker, start/end tokens, and
// truncation and padding to the text encoder's 77 positions.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizers/added_tokens.h"
#include "tokenizers/bpe_merges.h"
#include "tokenizers/regex.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/vocab_files.h"

namespace a2a {

struct ClipEncoding {
  std::vector<int64_t> ids;             // start, text ids, end, then padding
  std::vector<int64_t> attention_mask;  // 1 for start/text/end, 0 for padding
  bool truncated = false;               // the text ids did not all fit
};

class ClipTokenizer : public Tokenizer {
 public:
  // vocab.json and merges.txt in the Hugging Face layout. The pad token is read from
  // special_tokens_map.json / tokenizer_config.json beside them when present, else it is the end token.
  ClipTokenizer(const std::string& vocab_json, const std::string& merges_txt);
  static std::unique_ptr<ClipTokenizer> from_folder(const std::string& folder);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::vector<int64_t> encode_with_special(const std::string& text) const override;
  // [start] + ids (cut to max_length - 2) + [end], then pad ids up to max_length.
  ClipEncoding encode_padded(const std::string& text, int64_t max_length = 77) const;

  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  std::optional<int64_t> bos_id() const override { return start_id_; }
  std::optional<int64_t> eos_id() const override { return end_id_; }
  std::optional<int64_t> pad_id() const override { return pad_id_; }
  void set_pad_id(int64_t id) { pad_id_ = id; }
  std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) override;
  bool lossless() const override { return false; }

  // ftfy, HTML unescaping, whitespace collapsing and lower-casing, as CLIP does before splitting words.
  static std::string clean_text(const std::string& text);

 private:
  void encode_clean(const std::string& clean, std::vector<int64_t>& out) const;
  void encode_word(const std::string& word, std::vector<int64_t>& out) const;

  tokenizers::Vocabulary vocab_;
  bpe::MergeTable merges_;
  std::vector<int32_t> byte_ids_;      // byte -> id of its character
  std::vector<int32_t> byte_end_ids_;  // byte -> id of its character + "</w>"
  std::unique_ptr<tokenizers::Regex> word_pattern_;
  tokenizers::AddedTokens added_;
  int64_t start_id_ = 0, end_id_ = 0, pad_id_ = 0;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace a2a
