#pragma once
// Score-ordered merging (SentencePiece BPE, llama2.c): repeatedly joins the adjacent pair whose
// concatenation is a vocabulary piece with the highest score, leftmost among equal scores.
#include <cstdint>
#include <queue>
#include <string>
#include <vector>

namespace a2a::tokenizers {

// `lookup(piece, score)` returns true and sets `score` when the piece may be merged into.
template <typename Lookup>
void merge_by_score(std::vector<std::string>& symbols, const Lookup& lookup) {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  struct Candidate {
    float score;
    int left;
    size_t left_size, right_size;
    bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate> queue;
  std::string joined;
  auto push = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    joined = symbols[left];
    joined += symbols[next[left]];
    float score = 0;
    if (lookup(joined, score)) queue.push({score, left, symbols[left].size(), symbols[next[left]].size()});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<char> removed(n, 0);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    int right = next[c.left];
    // Stale when either side changed since the candidate was queued (sizes grow with every merge).
    if (removed[c.left] || right < 0 || symbols[c.left].size() != c.left_size ||
        symbols[right].size() != c.right_size) {
      continue;
    }
    symbols[c.left] += symbols[right];
    symbols[right].clear();
    removed[right] = 1;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    push(prev[c.left]);
    push(c.left);
  }
  std::vector<std::string> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(std::move(symbols[i]));
  symbols.swap(out);
}

}  // namespace a2a::tokenizers
