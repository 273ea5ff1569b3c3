#pragma once
// A compiled Unicode regular expression (PCRE2, UTF + Unicode properties, JIT when available), used by the
// pre-tokenizers: \p{L}, \p{N} and look-ahead need a real engine.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace a2a::tokenizers {

class Regex {
 public:
  // Throws a2a::Error naming `where` when the pattern does not compile.
  Regex(const std::string& pattern, bool caseless, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every non-overlapping match, left to right, as [begin, end) byte offsets. Empty matches are skipped.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2a::tokenizers
