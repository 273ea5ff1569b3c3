#include "tokenizers/bpe_merges.h"

#include <queue>

namespace a2a::bpe {

void MergeTable::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  if (capacity > slots_.size()) rehash(capacity);
}

void MergeTable::rehash(size_t capacity) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(capacity, Slot{});
  shift_ = 64;
  for (size_t c = capacity; c > 1; c >>= 1) --shift_;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = slot_of(s.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = s;
  }
}

void MergeTable::add(int32_t left, int32_t right, int32_t merged) { add(left, right, merged, next_rank_++); }

void MergeTable::add(int32_t left, int32_t right, int32_t merged, int32_t rank) {
  if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  const uint64_t k = key(left, right);
  size_t i = slot_of(k);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == k) {
      slots_[i].merge = {rank, merged};
      return;
    }
    i = (i + 1) & (slots_.size() - 1);
  }
  slots_[i] = {k, {rank, merged}};
  ++count_;
}

const MergeTable::Merge* MergeTable::find(int32_t left, int32_t right) const {
  if (left < 0 || right < 0 || slots_.empty()) return nullptr;
  const uint64_t k = key(left, right);
  size_t i = slot_of(k);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == k) return &slots_[i].merge;
    i = (i + 1) & (slots_.size() - 1);
  }
  return nullptr;
}

void MergeTable::apply(std::vector<int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;

  if (n <= 16) {
    // Short words: a direct scan is cheaper than a heap.
    while (symbols.size() > 1) {
      int best = -1;
      const Merge* best_merge = nullptr;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        const Merge* m = find(symbols[i], symbols[i + 1]);
        if (m && (!best_merge || m->rank < best_merge->rank)) {
          best_merge = m;
          best = static_cast<int>(i);
        }
      }
      if (!best_merge) break;
      symbols[best] = best_merge->merged;
      symbols.erase(symbols.begin() + best + 1);
    }
    return;
  }

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t left, right;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<int32_t> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* m = find(symbols[pos], symbols[next[pos]])) {
      queue.push({m->rank, pos, symbols[pos], symbols[next[pos]]});
    }
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<char> removed(n, 0);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    if (removed[c.pos] || symbols[c.pos] != c.left) continue;
    int right = next[c.pos];
    if (right < 0 || symbols[right] != c.right) continue;
    symbols[c.pos] = find(c.left, c.right)->merged;
    removed[right] = 1;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(symbols[i]);
  symbols.swap(out);
}

}  // namespace a2a::bpe
