#include "tokenizers/piece_trie.h"

namespace a2a::tokenizers {

void PieceTrie::insert(std::string_view piece, int32_t value) {
  if (piece.empty()) return;
  uint32_t node = 0;
  for (char byte : piece) {
    auto [it, added] = edges_.emplace(edge(node, byte), static_cast<uint32_t>(values_.size()));
    if (added) values_.push_back(-1);
    node = it->second;
  }
  if (values_[node] < 0) values_[node] = value;
}

}  // namespace a2a::tokenizers
