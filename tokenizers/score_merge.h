#pragma once
// Score-ordered merging (SentencePiece BPE, llama2.c): the reference repeatedly joins the adjacent pair of
// symbols whose concatenation is a vocabulary piece with the highest score, leftmost among equal scores.
// Symbols are always pieces or single characters, so every possible join is known in advance: each way of
// writing a mergeable piece as two such symbols becomes an entry of a rank-ordered merge table (equal
// scores share a rank), and encoding runs on ids.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizers/bpe_merges.h"

namespace a2a::tokenizers {

class ScoredMerges {
 public:
  // `ids` maps piece text to id; `mergeable[i]` says whether a join may produce piece i.
  void build(const std::vector<std::string>& pieces, const std::vector<float>& scores,
             const std::vector<bool>& mergeable, const std::unordered_map<std::string, int32_t>& ids);
  // Symbol id of one character: its piece id; an id past the vocabulary when it is no piece but occurs
  // inside one; `fallback` (negative) otherwise.
  int32_t character_id(std::string_view character, int32_t fallback) const;
  // The text of an id past the vocabulary.
  const std::string& extra_character(int32_t id) const { return extra_characters_[id - vocab_size_]; }
  bool is_piece(int32_t id) const { return id >= 0 && id < vocab_size_; }
  void apply(std::vector<int32_t>& symbols) const { table_.apply(symbols); }

 private:
  int32_t symbol_id(const std::string& text, bool single_character);

  bpe::MergeTable table_;
  const std::unordered_map<std::string, int32_t>* ids_ = nullptr;
  std::unordered_map<std::string, int32_t> extra_ids_;
  std::vector<std::string> extra_characters_;
  int32_t vocab_size_ = 0;
};

}  // namespace a2a::tokenizers
