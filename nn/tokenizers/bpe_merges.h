#pragma once
// Rank-ordered BPE merging over token ids (GPT-2, CLIP and Hugging Face BPE models).
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace a2a::bpe {

// Id of a symbol that is not in the vocabulary: it never merges.
constexpr int32_t kNoToken = -1;

class MergeTable {
 public:
  void add(int32_t left, int32_t right, int32_t merged);  // rank = insertion order
  size_t size() const { return merges_.size(); }
  // Repeatedly merges the adjacent pair with the lowest rank (leftmost among equals), as the reference
  // implementations do, until no pair has a merge.
  void apply(std::vector<int32_t>& symbols) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Merge* find(int32_t left, int32_t right) const;
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace a2a::bpe
