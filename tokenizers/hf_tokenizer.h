#pragma once
// Hugging Face tokenizer.json with a BPE model: byte-level BPE behind a Split regex pre-tokenizer (GPT-2,
// Llama-3, RoBERTa as used by CLAP) and SentencePiece-style BPE with Prepend/Replace or Metaspace
// normalisation and byte fallback (Llama-2, Mistral); or with a Unigram model (T5 as converted by transformers:
// Precompiled charsmap, Strip, Replace, Metaspace), segmented by tokenizers/unigram_model.h; added and special
// tokens; the post-processor
// (TemplateProcessing, RobertaProcessing, BertProcessing) and the decoders (ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, BPEDecoder). GPT-2's vocab.json + merges.txt layout loads into the same class.
#include <memory>
#include <string>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace a2a {

class HfTokenizer : public Tokenizer {
 public:
  // tokenizer.json; bos/eos/pad names come from tokenizer_config.json beside it when present, else from
  // the post-processor. Throws a2a::Error naming the file and the unsupported component.
  static std::unique_ptr<HfTokenizer> from_tokenizer_json(const std::string& path);
  // GPT-2's slow-tokenizer files: byte-level BPE, no prefix space, "<|endoftext|>" special.
  static std::unique_ptr<HfTokenizer> from_gpt2_files(const std::string& vocab_json, const std::string& merges_txt);
  ~HfTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  // Applies the post-processor ("<s> A </s>" for RoBERTa, "<s> A" for Llama-2).
  std::vector<int64_t> encode_with_special(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  // The decoded text of one id in the middle of a stream: no start-of-text stripping. Byte-level tokens may
  // hold an incomplete UTF-8 sequence; concatenate before displaying.
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  std::optional<int64_t> pad_id() const override;
  std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) override;
  // The token string of an id ("Ġworld", "▁Hello", "<s>"), as the vocabulary writes it.
  std::optional<std::string> id_to_token(int64_t id) const;

  struct Impl;

 private:
  HfTokenizer();
  std::string decode_by_piece(const std::vector<int64_t>& ids, bool skip_special) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2a
