#include "tokenizers/unigram_model.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "base/error.h"

namespace a2a::tokenizers {
namespace {

constexpr float kUnknownPenalty = 10.0f;

// SentencePiece's OneCharLen: the length a lead byte announces (1 for a stray continuation byte).
size_t announced_length(unsigned char lead) {
  static constexpr unsigned char kLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLength[lead >> 4];
}

}  // namespace

UnigramModel::UnigramModel(std::vector<Piece> pieces, int64_t unk_id, const std::string& where)
    : pieces_(std::move(pieces)) {
  auto fail = [&](const std::string& what) { throw_input_error("tokenizer_bad_vocab", where + ": " + what); };
  if (pieces_.empty()) fail("the unigram vocabulary is empty");
  if (unk_id < 0 || unk_id >= static_cast<int64_t>(pieces_.size())) {
    fail("unk_id " + std::to_string(unk_id) + " is not one of the " + std::to_string(pieces_.size()) + " pieces");
  }
  unk_id_ = static_cast<int32_t>(unk_id);
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const Piece& p = pieces_[id];
    if (!std::isfinite(p.score)) fail("piece " + std::to_string(id) + " has the score " + std::to_string(p.score));
    if (p.kind == Kind::Reserved) continue;
    if (p.text.empty()) fail("piece " + std::to_string(id) + " is empty");
    trie_.insert(p.text, static_cast<int32_t>(id));
    if (p.kind == Kind::Scored) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
  }
}

// The arithmetic follows the reference: a piece's candidate is computed in double (its score is the double of a
// conditional expression) and stored as float, the unknown candidate is float; equal scores keep the first path.
std::vector<UnigramModel::Token> UnigramModel::encode(std::string_view normalized) const {
  struct BestPath {
    float score = 0;
    int32_t id = -1;
    size_t start = 0;
    bool set = false;
  };
  const size_t size = normalized.size();
  const float unknown_score = min_score_ - kUnknownPenalty;
  std::vector<BestPath> best(size + 1);
  for (size_t start = 0; start < size;) {
    const float score_here = best[start].score;
    const size_t char_length = std::min(announced_length(static_cast<unsigned char>(normalized[start])), size - start);
    bool single_character_piece = false;
    trie_.for_each_prefix(normalized.substr(start), [&](size_t length, int32_t id) {
      const Piece& p = pieces_[id];
      if (p.kind == Kind::Unused) return;
      const double score =
          p.kind == Kind::UserDefined ? static_cast<double>(static_cast<float>(length) * max_score_) - 0.1 : p.score;
      const double candidate = score + score_here;
      BestPath& target = best[start + length];
      if (!target.set || candidate > target.score) target = {static_cast<float>(candidate), id, start, true};
      if (length == char_length) single_character_piece = true;
    });
    if (!single_character_piece) {
      const float candidate = unknown_score + score_here;
      BestPath& target = best[start + char_length];
      if (!target.set || candidate > target.score) target = {candidate, unk_id_, start, true};
    }
    start += char_length;
  }
  std::vector<Token> tokens;
  for (size_t end = size; end > 0; end = best[end].start) tokens.push_back({best[end].start, end, best[end].id});
  std::reverse(tokens.begin(), tokens.end());
  std::vector<Token> merged;
  for (const Token& t : tokens) {
    if (t.id == unk_id_ && !merged.empty() && merged.back().id == unk_id_) {
      merged.back().end = t.end;
    } else {
      merged.push_back(t);
    }
  }
  return merged;
}

}  // namespace a2a::tokenizers
