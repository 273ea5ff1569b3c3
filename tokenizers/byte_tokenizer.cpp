#include "tokenizers/byte_tokenizer.h"

#include <algorithm>

#include "tokenizers/unicode.h"

namespace a2a {

ByteTokenizer::ByteTokenizer(ByteTokenizerOptions options) : options_(options) {}

std::vector<int64_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    for (size_t i = segment.begin; i < segment.end; ++i)
      ids.push_back(static_cast<unsigned char>(text[i]) + options_.byte_offset);
  }
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  for (auto id : ids) {
    const int64_t byte = id - options_.byte_offset;
    if (byte >= 0 && byte < 256) {
      out += static_cast<char>(byte);
    } else if (const auto* token = added_.find(id); token && !(skip_special && token->special)) {
      out += token->content;
    }
  }
  // Random weights emit arbitrary bytes: keep the text valid UTF-8.
  return unicode::sanitize_utf8(out);
}

std::string ByteTokenizer::token_text(int64_t id) const { return decode({id}); }

int64_t ByteTokenizer::vocab_size() const {
  return options_.first_added_id + static_cast<int64_t>(added_.tokens().size());
}

std::optional<int64_t> ByteTokenizer::token_to_id(const std::string& token) const {
  if (const auto* added = added_.find(token)) return added->id;
  if (token.size() == 1) return static_cast<unsigned char>(token[0]) + options_.byte_offset;
  return std::nullopt;
}

std::vector<int64_t> ByteTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<int64_t> ids;
  for (const auto& content : tokens) {
    if (const auto* existing = added_.find(content)) {
      ids.push_back(existing->id);
      continue;
    }
    tokenizers::AddedToken token;
    token.content = content;
    token.id = vocab_size();
    added_.add(token);
    ids.push_back(token.id);
  }
  return ids;
}

PaddedIds ByteTokenizer::encode_padded(const std::string& text, int64_t max_length, int64_t pad_id) const {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t kept = std::min(text.size(), static_cast<size_t>(std::max<int64_t>(max_length - 2, 0)));
  PaddedIds out;
  out.ids.push_back(options_.bos_id);
  for (size_t i = 0; i < kept; ++i) out.ids.push_back(bytes[i] + options_.byte_offset);
  out.ids.push_back(options_.eos_id);
  out.mask.assign(out.ids.size(), 1);
  out.ids.resize(static_cast<size_t>(max_length), pad_id);
  out.mask.resize(static_cast<size_t>(max_length), 0);
  return out;
}

}  // namespace a2a
