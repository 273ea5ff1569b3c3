#pragma once
// Rank-ordered BPE merging over token ids (GPT-2, CLIP and Hugging Face BPE models).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace a2a::bpe {

// Negative ids mark symbols outside the vocabulary: they never merge.
constexpr int32_t kNoToken = -1;

class MergeTable {
 public:
  // Rank = position in the merge list; a repeated pair takes its last position, as the Python and Rust
  // references build their rank maps.
  void add(int32_t left, int32_t right, int32_t merged);
  // An explicit rank; equal ranks merge leftmost first (score-ordered models give equal scores equal ranks).
  void add(int32_t left, int32_t right, int32_t merged, int32_t rank);
  void reserve(size_t count);
  size_t size() const { return count_; }
  // Repeatedly merges the adjacent pair with the lowest rank (leftmost among equals), as the reference
  // implementations do, until no pair has a merge.
  void apply(std::vector<int32_t>& symbols) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  // Open addressing with linear probing over (left, right) keys: merge lookups dominate BPE.
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  size_t slot_of(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_); }
  const Merge* find(int32_t left, int32_t right) const;
  void rehash(size_t capacity);
  std::vector<Slot> slots_;
  size_t count_ = 0;
  int32_t next_rank_ = 0;
  int shift_ = 64;
};

}  // namespace a2a::bpe
