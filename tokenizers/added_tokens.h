#pragma once
// Tokens matched verbatim in the text before any other processing (special tokens such as "<|endoftext|>",
// signal tokens such as "[IMG0]"): leftmost, and longest among those starting at the same place, as
// Hugging Face tokenizers' added vocabulary matches them.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace a2a::tokenizers {

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool special = true;
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matches when not inside a word
};

class AddedTokens {
 public:
  struct Segment {
    size_t begin = 0, end = 0;
    int64_t id = -1;  // -1: ordinary text
  };

  void add(const AddedToken& token);
  bool empty() const { return tokens_.empty(); }
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(int64_t id) const;
  const AddedToken* find(std::string_view content) const;
  // Splits text into ordinary runs and added tokens (ordinary runs may be empty only when there are none).
  std::vector<Segment> split(std::string_view text) const;

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int64_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  // First byte -> token indices, longest first.
  std::vector<std::vector<size_t>> by_first_byte_ = std::vector<std::vector<size_t>>(256);
};

}  // namespace a2a::tokenizers
