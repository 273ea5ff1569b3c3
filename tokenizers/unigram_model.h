#pragma once
// The segmentation of a unigram language model (SentencePiece's unigram Model::EncodeOptimized, which Hugging Face's
// Unigram model follows): the best-scoring path through the lattice of vocabulary pieces that start at each
// character; a character that starts no one-character piece may also be read as unknown at min score - 10, and
// consecutive unknowns merge into one unk token. Both SentencePieceTokenizer and HfTokenizer encode with it.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizers/piece_trie.h"

namespace a2a::tokenizers {

class UnigramModel {
 public:
  enum class Kind {
    Scored,       // matched with its score (SentencePiece NORMAL; every piece of a tokenizer.json vocabulary)
    UserDefined,  // matched with a bonus that makes it win: bytes * max score - 0.1
    Unused,       // in the vocabulary, never matched (UNUSED)
    Reserved,     // never matched from text (CONTROL, UNKNOWN, BYTE)
  };
  struct Piece {
    std::string text;
    float score = 0;
    Kind kind = Kind::Scored;
  };
  struct Token {
    size_t begin = 0, end = 0;  // bytes of the normalized text
    int32_t id = -1;            // unk_id for a run of unknown characters
  };

  // Throws the input error "tokenizer_bad_vocab" naming `where` for no pieces, a score that is not finite, an
  // empty piece that could match, or an unk_id that is not one of the pieces.
  UnigramModel(std::vector<Piece> pieces, int64_t unk_id, const std::string& where);

  std::vector<Token> encode(std::string_view normalized) const;
  int32_t unk_id() const { return unk_id_; }
  size_t size() const { return pieces_.size(); }

 private:
  std::vector<Piece> pieces_;
  PieceTrie trie_;
  int32_t unk_id_ = 0;
  // SentencePiece's min_score_ and max_score_ over the scored pieces (max starts at FLT_MIN, not at -FLT_MAX).
  float min_score_ = 0, max_score_ = 0;
};

}  // namespace a2a::tokenizers
