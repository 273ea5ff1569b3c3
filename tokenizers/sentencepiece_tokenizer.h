#pragma once
// SentencePiece tokenizer.model (Llama-2, Vicuna, Mistral), read without libsentencepiece: the
// ModelProto protobuf is parsed directly (pieces, normalizer_spec, trainer_spec). BPE models merge by
// piece score; unigram models take the Viterbi segmentation; unknown characters fall back to <0xXX>
// byte pieces when the model was trained with byte_fallback.
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizers/added_tokens.h"
#include "tokenizers/score_merge.h"
#include "tokenizers/tokenizer.h"

namespace a2a {

class SentencePieceTokenizer : public Tokenizer {
 public:
  enum class PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
  enum class ModelType { Unigram = 1, Bpe = 2, Word = 3, Char = 4 };

  // Throws a2a::Error naming the file for a malformed protobuf or an unsupported model.
  explicit SentencePieceTokenizer(const std::string& path);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  std::optional<int64_t> pad_id() const override;
  std::optional<int64_t> unk_id() const;
  std::vector<int64_t> add_special_tokens(const std::vector<std::string>& tokens) override;

  ModelType model_type() const { return model_type_; }
  const std::string& piece(int64_t id) const { return pieces_.at(id).text; }
  PieceType piece_type(int64_t id) const { return pieces_.at(id).type; }

 private:
  struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::Normal;
  };
  std::string normalize(const std::string& text) const;
  void encode_normalized(const std::string& normalized, std::vector<int64_t>& out) const;
  void encode_bpe(const std::string& text, std::vector<int64_t>& out) const;
  void encode_unigram(const std::string& text, std::vector<int64_t>& out) const;
  void emit_unknown(std::string_view text, std::vector<int64_t>& out) const;

  std::string path_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  ModelType model_type_ = ModelType::Unigram;
  bool byte_fallback_ = false;
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  int32_t unk_id_ = 0, bos_id_ = 1, eos_id_ = 2, pad_id_ = -1;
  std::string unk_surface_ = " \xE2\x81\x87 ";
  std::vector<int32_t> byte_ids_;          // <0xXX> piece ids
  std::vector<std::string> user_defined_;  // matched before splitting into characters, longest first
  float min_score_ = 0;
  size_t max_piece_chars_ = 1;
  tokenizers::ScoredMerges merges_;  // BPE models
  tokenizers::AddedTokens added_;
};

}  // namespace a2a
