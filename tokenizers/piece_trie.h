#pragma once
// A byte trie over vocabulary pieces, for the prefix searches of unigram segmentation and of SentencePiece's
// user-defined symbols: every piece that starts a text, shortest first, in one walk.
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace a2a::tokenizers {

class PieceTrie {
 public:
  // Adds a non-empty piece; a piece added twice keeps its first value.
  void insert(std::string_view piece, int32_t value);
  bool empty() const { return edges_.empty(); }

  // Calls on_match(length, value) for each piece that is a prefix of `text`, shortest first.
  template <typename OnMatch>
  void for_each_prefix(std::string_view text, OnMatch&& on_match) const {
    uint32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      auto it = edges_.find(edge(node, text[i]));
      if (it == edges_.end()) return;
      node = it->second;
      if (values_[node] >= 0) on_match(i + 1, values_[node]);
    }
  }

 private:
  static uint64_t edge(uint32_t node, char byte) {
    return (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(byte);
  }
  std::unordered_map<uint64_t, uint32_t> edges_;  // (node, byte) -> child
  std::vector<int32_t> values_{-1};               // per node; -1 where no piece ends
};

}  // namespace a2a::tokenizers
