#pragma once
// SentencePiece tokenizer.model / spiece.model (Llama-2, Vicuna, Mistral: BPE; T5, mT5, ALBERT: unigram), read
// without libsentencepiece: the ModelProto protobuf is parsed directly (pieces, normalizer_spec, trainer_spec).
// Text is normalized as SentencePiece's Normalizer does (the precompiled charsmap such as nmt_nfkc, user-defined
// pieces copied unchanged, extra whitespace removed, a dummy prefix, spaces escaped as U+2581); BPE models merge by
// piece score, unigram models take the Viterbi segmentation (tokenizers/unigram_model.h); unknown characters fall
// back to <0xXX> byte pieces when the model was trained with byte_fallback.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizers/added_tokens.h"
#include "tokenizers/piece_trie.h"
#include "tokenizers/precompiled_charsmap.h"
#include "tokenizers/score_merge.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/unigram_model.h"

namespace a2a {

class SentencePieceTokenizer : public Tokenizer {
 public:
  enum class PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
  enum class ModelType { Unigram = 1, Bpe = 2, Word = 3, Char = 4 };

  // Throws a2a::Error naming the file for a malformed protobuf or an unsupported model.
  explicit SentencePieceTokenizer(const std::string& path);

  std::vector<int64_t> encode(const std::string& text) const override;
  // SentencePiece's encode(text, out_type=str): the pieces, an unknown run as its normalized text.
  std::vector<std::string> encode_as_pieces(const std::string& text) const;
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
  float score(int64_t id) const { return pieces_.at(id).score; }
  // normalizer_spec.precompiled_charsmap as stored (empty for identity normalization).
  const std::string& precompiled_charsmap() const { return charsmap_blob_; }

 private:
  struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::Normal;
  };
  void check_model();
  std::vector<tokenizers::UnigramModel::Piece> index_pieces();
  [[noreturn]] void unsupported(const std::string& what) const;
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
  std::string normalize(std::string_view text) const;
  // (id, piece text) per token of normalized text.
  using Pieces = std::vector<std::pair<int32_t, std::string>>;
  void encode_normalized(const std::string& normalized, Pieces& out) const;
  void encode_bpe(const std::string& text, Pieces& out) const;
  void encode_unigram(const std::string& text, Pieces& out) const;
  void emit_unknown(std::string_view text, Pieces& out) const;
  Pieces encode_pieces(const std::string& text) const;

  std::string path_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  ModelType model_type_ = ModelType::Unigram;
  bool byte_fallback_ = false;
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  int32_t unk_id_ = 0, bos_id_ = 1, eos_id_ = 2, pad_id_ = -1;
  std::string unk_surface_ = " \xE2\x81\x87 ";
  std::vector<int32_t> byte_ids_;            // <0xXX> piece ids
  std::vector<std::string> user_defined_;    // BPE: matched before splitting into characters, longest first
  tokenizers::PieceTrie user_defined_trie_;  // the normalizer copies these unchanged
  std::string charsmap_blob_;
  std::unique_ptr<tokenizers::PrecompiledCharsMap> charsmap_;
  tokenizers::ScoredMerges merges_;                    // BPE models
  std::unique_ptr<tokenizers::UnigramModel> unigram_;  // unigram models
  tokenizers::AddedTokens added_;
};

}  // namespace a2a
