#include "tokenizers/llama2c_tokenizer.h"

#include <cstring>

#include "base/error.h"
#include "tokenizers/unicode.h"
#include "tokenizers/vocab_files.h"

namespace a2a {
namespace {

constexpr int kBos = 1;
constexpr int kFirstByteToken = 3;  // run.c: byte b is token b + 3

// "<0xAB>" -> 0xAB; -1 otherwise.
int byte_piece_value(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    char c = piece[i];
    int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

Llama2cTokenizer::Llama2cTokenizer(const std::string& path) {
  std::string data = tokenizers::read_file(path);
  size_t pos = 0;
  auto read = [&](void* dst, size_t size, const char* what) {
    if (pos + size > data.size()) {
      throw_input_error("tokenizer_truncated", path + ": llama2.c tokenizer file ends inside " + std::string(what) +
                                                   " of token " + std::to_string(pieces_.size()));
    }
    std::memcpy(dst, data.data() + pos, size);
    pos += size;
  };
  int32_t max_length = 0;
  read(&max_length, 4, "the header");
  if (max_length <= 0 || max_length > 4096) {
    throw_input_error("tokenizer_bad_format",
                      path + ": not a llama2.c tokenizer (max_token_length " + std::to_string(max_length) + ")");
  }
  max_token_length_ = max_length;
  while (pos < data.size()) {
    float score = 0;
    int32_t length = 0;
    read(&score, 4, "the score");
    read(&length, 4, "the length");
    if (length < 0 || length > max_length) {
      throw_input_error("tokenizer_bad_format", path + ": token " + std::to_string(pieces_.size()) + " has length " +
                                                    std::to_string(length) + " (max " + std::to_string(max_length) +
                                                    ")");
    }
    std::string piece(static_cast<size_t>(length), '\0');
    read(piece.data(), piece.size(), "the bytes");
    ids_.emplace(piece, static_cast<int32_t>(pieces_.size()));
    pieces_.push_back(std::move(piece));
    scores_.push_back(score);
  }
  if (pieces_.size() < kFirstByteToken + 256) {
    throw_input_error("tokenizer_bad_format", path + ": only " + std::to_string(pieces_.size()) +
                                                  " tokens; llama2.c needs 3 control and 256 byte tokens");
  }
  merges_.build(pieces_, scores_, std::vector<bool>(pieces_.size(), true), ids_);
}

void Llama2cTokenizer::encode_plain(const std::string& text, std::vector<int64_t>& out) const {
  // One symbol per UTF-8 character (run.c groups a lead byte with at most 3 continuation bytes);
  // characters without a piece become their byte tokens.
  std::vector<int32_t> symbols;
  symbols.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length = 1;
    while (pos + length < text.size() && length < 4 && (static_cast<unsigned char>(text[pos + length]) & 0xC0) == 0x80)
      ++length;
    int32_t id = merges_.character_id(std::string_view(text).substr(pos, length), -1);
    if (merges_.is_piece(id)) {
      symbols.push_back(id);
    } else {
      for (size_t i = 0; i < length; ++i)
        symbols.push_back(static_cast<unsigned char>(text[pos + i]) + kFirstByteToken);
    }
    pos += length;
  }
  merges_.apply(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

std::vector<int64_t> Llama2cTokenizer::encode(const std::string& text, bool bos, bool eos) const {
  std::vector<int64_t> ids;
  if (bos) ids.push_back(kBos);
  bool first = true;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      first = false;
      continue;
    }
    if (segment.begin == segment.end) continue;
    // run.c's dummy prefix: a " " in front of the text, merged like any other piece.
    std::string plain = (first ? " " : "") + text.substr(segment.begin, segment.end - segment.begin);
    first = false;
    encode_plain(plain, ids);
  }
  if (eos) ids.push_back(2);
  return ids;
}

std::vector<int64_t> Llama2cTokenizer::encode(const std::string& text) const { return encode(text, false, false); }

std::string Llama2cTokenizer::token_text(int64_t id) const {
  if (const auto* added = added_.find(id)) return added->content;
  if (id < 0 || id >= static_cast<int64_t>(pieces_.size())) return {};
  const std::string& piece = pieces_[id];
  int byte = byte_piece_value(piece);
  if (byte >= 0) return std::string(1, static_cast<char>(byte));
  return piece;
}

std::string Llama2cTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  bool at_start = true;
  for (int64_t id : ids) {
    bool control = id == 0 || id == kBos || id == 2 || added_.find(id);
    if (id == kBos) {
      at_start = true;
      if (!skip_special) out += pieces_[id];
      continue;
    }
    if (control && skip_special) continue;
    std::string piece = token_text(id);
    if (at_start && !piece.empty() && piece[0] == ' ' && byte_piece_value(pieces_[id]) < 0) piece.erase(0, 1);
    at_start = false;
    out += piece;
  }
  return out;
}

int64_t Llama2cTokenizer::vocab_size() const {
  int64_t size = static_cast<int64_t>(pieces_.size());
  for (const auto& token : added_.tokens()) size = std::max(size, token.id + 1);
  return size;
}

std::optional<int64_t> Llama2cTokenizer::token_to_id(const std::string& token) const {
  if (const auto* added = added_.find(token)) return added->id;
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::vector<int64_t> Llama2cTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<int64_t> ids;
  for (const auto& content : tokens) {
    if (const auto* added = added_.find(content)) {
      ids.push_back(added->id);
      continue;
    }
    int64_t id = vocab_size();
    added_.add({content, id, true});
    ids.push_back(id);
  }
  return ids;
}

}  // namespace a2a
