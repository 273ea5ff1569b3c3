#include "tokenizers/added_tokens.h"

#include <algorithm>

#include "tokenizers/unicode.h"

namespace a2a::tokenizers {
namespace {

bool is_word_byte(unsigned char c) {
  return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_space_at(std::string_view text, size_t pos, size_t& length) {
  size_t next = pos;
  uint32_t cp = unicode::next_code_point(text, next);
  length = next - pos;
  return unicode::is_python_space(cp);
}

}  // namespace

void AddedTokens::add(const AddedToken& token) {
  if (token.content.empty()) return;
  auto existing = by_content_.find(token.content);
  if (existing != by_content_.end()) {
    tokens_[existing->second] = token;
    by_id_[token.id] = existing->second;
    return;
  }
  size_t index = tokens_.size();
  tokens_.push_back(token);
  by_id_[token.id] = index;
  by_content_[token.content] = index;
  auto& bucket = by_first_byte_[static_cast<unsigned char>(token.content[0])];
  bucket.push_back(index);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](size_t a, size_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

const AddedToken* AddedTokens::find(int64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokens::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<AddedTokens::Segment> AddedTokens::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* match = nullptr;
    for (size_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const AddedToken& token = tokens_[index];
      if (text.compare(pos, token.content.size(), token.content) != 0) continue;
      if (token.single_word) {
        size_t end = pos + token.content.size();
        bool left_ok = pos == 0 || !is_word_byte(static_cast<unsigned char>(text[pos - 1]));
        bool right_ok = end >= text.size() || !is_word_byte(static_cast<unsigned char>(text[end]));
        if (!left_ok || !right_ok) continue;
      }
      match = &token;
      break;
    }
    if (!match) {
      ++pos;
      continue;
    }
    size_t begin = pos;
    size_t end = pos + match->content.size();
    if (match->lstrip) {
      // Swallow whitespace to the left, back to the previous segment.
      while (begin > plain_start) {
        size_t back = begin - 1;
        while (back > plain_start && (static_cast<unsigned char>(text[back]) & 0xC0) == 0x80) --back;
        size_t length = 0;
        if (!is_space_at(text, back, length)) break;
        begin = back;
      }
    }
    if (match->rstrip) {
      size_t length = 0;
      while (end < text.size() && is_space_at(text, end, length)) end += length;
    }
    if (begin > plain_start) out.push_back({plain_start, begin, -1});
    out.push_back({begin, end, match->id});
    pos = plain_start = end;
  }
  if (plain_start < text.size() || out.empty()) out.push_back({plain_start, text.size(), -1});
  return out;
}

}  // namespace a2a::tokenizers
