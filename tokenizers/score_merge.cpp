#include "tokenizers/score_merge.h"

#include <algorithm>
#include <functional>

#include "tokenizers/unicode.h"

namespace a2a::tokenizers {

int32_t ScoredMerges::symbol_id(const std::string& text, bool single_character) {
  auto it = ids_->find(text);
  if (it != ids_->end()) return it->second;
  if (!single_character) return -1;
  auto extra = extra_ids_.find(text);
  if (extra != extra_ids_.end()) return extra->second;
  int32_t id = vocab_size_ + static_cast<int32_t>(extra_characters_.size());
  extra_ids_.emplace(text, id);
  extra_characters_.push_back(text);
  return id;
}

void ScoredMerges::build(const std::vector<std::string>& pieces, const std::vector<float>& scores,
                         const std::vector<bool>& mergeable, const std::unordered_map<std::string, int32_t>& ids) {
  ids_ = &ids;
  vocab_size_ = static_cast<int32_t>(pieces.size());
  std::vector<float> distinct;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (mergeable[i]) distinct.push_back(scores[i]);
  }
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  table_.reserve(pieces.size() * 4);

  std::vector<size_t> boundaries;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& text = pieces[id];
    // Only the piece the text names can be produced by a join (duplicates keep their first id).
    if (!mergeable[id] || ids.at(text) != static_cast<int32_t>(id)) continue;
    boundaries.clear();
    for (size_t pos = 0; pos < text.size();) {
      unicode::next_code_point(text, pos);
      boundaries.push_back(pos);
    }
    if (boundaries.size() < 2) continue;
    const auto rank = static_cast<int32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), scores[id], std::greater<float>()) - distinct.begin());
    for (size_t k = 0; k + 1 < boundaries.size(); ++k) {
      const size_t split = boundaries[k];
      int32_t left = symbol_id(text.substr(0, split), k == 0);
      int32_t right = symbol_id(text.substr(split), k + 2 == boundaries.size());
      if (left >= 0 && right >= 0) table_.add(left, right, static_cast<int32_t>(id), rank);
    }
  }
}

int32_t ScoredMerges::character_id(std::string_view character, int32_t fallback) const {
  std::string key(character);
  auto it = ids_->find(key);
  if (it != ids_->end()) return it->second;
  auto extra = extra_ids_.find(key);
  if (extra != extra_ids_.end()) return extra->second;
  return fallback;
}

}  // namespace a2a::tokenizers
