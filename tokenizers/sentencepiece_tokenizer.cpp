#include "tokenizers/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "tokenizers/unicode.h"
#include "tokenizers/vocab_files.h"

namespace a2a {
namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
constexpr float kUnknownPenalty = 10.0f;

// A minimal protobuf wire-format reader: varints, length-delimited fields and fixed 32/64-bit values.
class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& where) : data_(data), where_(where) {}

  bool next(uint32_t& field, uint32_t& wire_type) {
    if (pos_ >= data_.size()) return false;
    uint64_t key = varint();
    field = static_cast<uint32_t>(key >> 3);
    wire_type = static_cast<uint32_t>(key & 7);
    return true;
  }
  uint64_t varint() {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail("a varint runs past the end");
      auto byte = static_cast<unsigned char>(data_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) return result;
    }
    fail("a varint is longer than 10 bytes");
  }
  std::string_view bytes() {
    uint64_t length = varint();
    if (length > data_.size() - pos_) fail("a length-delimited field runs past the end");
    std::string_view out = data_.substr(pos_, length);
    pos_ += length;
    return out;
  }
  float fixed32_float() {
    if (pos_ + 4 > data_.size()) fail("a 32-bit field runs past the end");
    float value;
    std::memcpy(&value, data_.data() + pos_, 4);
    pos_ += 4;
    return value;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: advance(8); break;
      case 2: bytes(); break;
      case 5: advance(4); break;
      default: fail("unknown wire type " + std::to_string(wire_type));
    }
  }

 private:
  void advance(size_t n) {
    if (pos_ + n > data_.size()) fail("a fixed-size field runs past the end");
    pos_ += n;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw_input_error("tokenizer_bad_model", where_ + ": not a SentencePiece model: " + what);
  }
  std::string_view data_;
  size_t pos_ = 0;
  std::string where_;
};

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path) : path_(path) {
  const std::string data = tokenizers::read_file(path);
  std::string normalizer_name;
  bool has_charsmap = false;
  ProtoReader model(data, path);
  uint32_t field = 0, wire = 0;
  while (model.next(field, wire)) {
    if (field == 1 && wire == 2) {  // pieces
      ProtoReader reader(model.bytes(), path);
      Piece piece;
      while (reader.next(field, wire)) {
        if (field == 1 && wire == 2)
          piece.text = std::string(reader.bytes());
        else if (field == 2 && wire == 5)
          piece.score = reader.fixed32_float();
        else if (field == 3 && wire == 0)
          piece.type = static_cast<PieceType>(reader.varint());
        else
          reader.skip(wire);
      }
      pieces_.push_back(std::move(piece));
    } else if (field == 2 && wire == 2) {  // trainer_spec
      ProtoReader reader(model.bytes(), path);
      while (reader.next(field, wire)) {
        if (wire != 0) {
          reader.skip(wire);
          continue;
        }
        uint64_t value = reader.varint();
        switch (field) {
          case 3: model_type_ = static_cast<ModelType>(value); break;
          case 35: byte_fallback_ = value != 0; break;
          case 40: unk_id_ = static_cast<int32_t>(value); break;
          case 41: bos_id_ = static_cast<int32_t>(value); break;
          case 42: eos_id_ = static_cast<int32_t>(value); break;
          case 43: pad_id_ = static_cast<int32_t>(value); break;
          default: break;
        }
      }
    } else if (field == 3 && wire == 2) {  // normalizer_spec
      ProtoReader reader(model.bytes(), path);
      while (reader.next(field, wire)) {
        if (field == 1 && wire == 2)
          normalizer_name = std::string(reader.bytes());
        else if (field == 2 && wire == 2)
          has_charsmap = !reader.bytes().empty();
        else if (field == 3 && wire == 0)
          add_dummy_prefix_ = reader.varint() != 0;
        else if (field == 4 && wire == 0)
          remove_extra_whitespaces_ = reader.varint() != 0;
        else if (field == 5 && wire == 0)
          escape_whitespaces_ = reader.varint() != 0;
        else
          reader.skip(wire);
      }
    } else {
      model.skip(wire);
    }
  }
  if (pieces_.empty()) throw_input_error("tokenizer_bad_model", path + ": SentencePiece model has no pieces");
  if (model_type_ != ModelType::Bpe && model_type_ != ModelType::Unigram) {
    throw_input_error("tokenizer_unsupported", path + ": SentencePiece model type " +
                                                   std::to_string(static_cast<int>(model_type_)) +
                                                   " (only BPE and unigram are supported)");
  }
  if (has_charsmap) {
    throw_input_error("tokenizer_unsupported", path + ": SentencePiece normalization \"" + normalizer_name +
                                                   "\" with a precompiled character map is not supported "
                                                   "(identity normalization only)");
  }

  // Every unknown character becomes this id, so it must name a piece (SentencePiece refuses such models too).
  if (unk_id_ < 0 || unk_id_ >= static_cast<int64_t>(pieces_.size()))
    throw_input_error("tokenizer_bad_model", path + ": unk_id " + std::to_string(unk_id_) + " is not one of its " +
                                                 std::to_string(pieces_.size()) + " pieces");
  byte_ids_.assign(256, -1);
  min_score_ = std::numeric_limits<float>::max();
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const Piece& p = pieces_[id];
    // SentencePiece never writes an empty piece; one would match everywhere without consuming text.
    if (p.text.empty()) throw_input_error("tokenizer_bad_format", path + ": piece " + std::to_string(id) + " is empty");
    ids_.emplace(p.text, static_cast<int32_t>(id));
    if (p.type == PieceType::Byte) {
      int value = -1;
      if (p.text.size() == 6 && std::sscanf(p.text.c_str(), "<0x%02X>", &value) == 1 && value >= 0 && value < 256) {
        byte_ids_[value] = static_cast<int32_t>(id);
      }
    }
    if (p.type == PieceType::UserDefined) user_defined_.push_back(p.text);
    if (p.type == PieceType::Normal) {
      min_score_ = std::min(min_score_, p.score);
      max_piece_chars_ = std::max(max_piece_chars_, unicode::to_code_points(p.text).size());
    }
  }
  std::sort(user_defined_.begin(), user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  if (model_type_ == ModelType::Bpe) {
    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<bool> mergeable;
    for (const Piece& p : pieces_) {
      texts.push_back(p.text);
      scores.push_back(p.score);
      mergeable.push_back(p.type == PieceType::Normal || p.type == PieceType::UserDefined);
    }
    merges_.build(texts, scores, mergeable, ids_);
  }
  if (byte_fallback_ && std::count(byte_ids_.begin(), byte_ids_.end(), -1) > 0) {
    throw_input_error("tokenizer_bad_model", path + ": byte_fallback is set but some <0xXX> pieces are missing");
  }
}

std::string SentencePieceTokenizer::normalize(const std::string& text) const {
  std::string out;
  out.reserve(text.size() + 3);
  std::string_view view(text);
  if (remove_extra_whitespaces_) {
    size_t begin = view.find_first_not_of(' ');
    if (begin == std::string_view::npos) return {};
    view = view.substr(begin, view.find_last_not_of(' ') - begin + 1);
  }
  if (view.empty()) return {};
  const std::string space = escape_whitespaces_ ? kSpace : " ";
  if (add_dummy_prefix_) out += space;
  bool previous_space = false;
  for (char c : view) {
    if (c == ' ') {
      if (remove_extra_whitespaces_ && previous_space) continue;
      out += space;
      previous_space = true;
    } else {
      out += c;
      previous_space = false;
    }
  }
  return out;
}

void SentencePieceTokenizer::emit_unknown(std::string_view text, std::vector<int64_t>& out) const {
  if (byte_fallback_) {
    for (unsigned char b : text) out.push_back(byte_ids_[b]);
    return;
  }
  out.push_back(unk_id_);
}

void SentencePieceTokenizer::encode_bpe(const std::string& text, std::vector<int64_t>& out) const {
  std::vector<std::string> characters = unicode::split_characters(text);
  std::vector<int32_t> symbols(characters.size());
  for (size_t i = 0; i < characters.size(); ++i) {
    // Characters that occur in no piece get a distinct negative id, so that their text can be recovered.
    symbols[i] = merges_.character_id(characters[i], -static_cast<int32_t>(i) - 2);
  }
  merges_.apply(symbols);
  for (int32_t id : symbols) {
    if (id < 0) {
      emit_unknown(characters[-(id + 2)], out);
    } else if (!merges_.is_piece(id)) {
      emit_unknown(merges_.extra_character(id), out);
    } else if (pieces_[id].type == PieceType::Unused) {
      emit_unknown(pieces_[id].text, out);
    } else {
      out.push_back(id);
    }
  }
}

void SentencePieceTokenizer::encode_unigram(const std::string& text, std::vector<int64_t>& out) const {
  // Viterbi over character positions: best total score of a segmentation ending at each position.
  std::vector<size_t> offsets;  // byte offset of each character, plus the end
  for (size_t pos = 0; pos < text.size();) {
    offsets.push_back(pos);
    unicode::next_code_point(text, pos);
  }
  offsets.push_back(text.size());
  const size_t n = offsets.size() - 1;
  const float unknown_score = min_score_ - kUnknownPenalty;
  std::vector<float> best(n + 1, -std::numeric_limits<float>::infinity());
  std::vector<size_t> from(n + 1, 0);
  std::vector<int32_t> via(n + 1, -1);
  best[0] = 0;
  for (size_t start = 0; start < n; ++start) {
    if (best[start] == -std::numeric_limits<float>::infinity()) continue;
    bool single_found = false;
    for (size_t end = start + 1; end <= n && end - start <= max_piece_chars_; ++end) {
      auto it = ids_.find(text.substr(offsets[start], offsets[end] - offsets[start]));
      if (it == ids_.end()) continue;
      const Piece& p = pieces_[it->second];
      if (p.type != PieceType::Normal && p.type != PieceType::UserDefined) continue;
      if (end == start + 1) single_found = true;
      float score = best[start] + (p.type == PieceType::UserDefined ? 0.0f : p.score);
      if (score > best[end]) {
        best[end] = score;
        from[end] = start;
        via[end] = it->second;
      }
    }
    if (!single_found && best[start] + unknown_score > best[start + 1]) {
      best[start + 1] = best[start] + unknown_score;
      from[start + 1] = start;
      via[start + 1] = -1;
    }
  }
  std::vector<std::pair<size_t, int32_t>> path;  // (start character, id or -1)
  for (size_t end = n; end > 0; end = from[end]) path.emplace_back(from[end], via[end]);
  std::reverse(path.begin(), path.end());
  for (size_t i = 0; i < path.size(); ++i) {
    size_t start = path[i].first;
    size_t end = i + 1 < path.size() ? path[i + 1].first : n;
    if (path[i].second >= 0) {
      out.push_back(path[i].second);
    } else if (byte_fallback_) {
      for (size_t b = offsets[start]; b < offsets[end]; ++b)
        out.push_back(byte_ids_[static_cast<unsigned char>(text[b])]);
    } else if (out.empty() || out.back() != unk_id_) {
      out.push_back(unk_id_);  // consecutive unknown characters share one <unk>
    }
  }
}

void SentencePieceTokenizer::encode_normalized(const std::string& normalized, std::vector<int64_t>& out) const {
  // User-defined pieces are whole symbols; the text between them is segmented by the model.
  size_t plain_start = 0;
  auto flush = [&](size_t end) {
    if (end <= plain_start) return;
    std::string plain = normalized.substr(plain_start, end - plain_start);
    if (model_type_ == ModelType::Bpe)
      encode_bpe(plain, out);
    else
      encode_unigram(plain, out);
  };
  size_t pos = 0;
  while (pos < normalized.size() && !user_defined_.empty()) {
    const std::string* match = nullptr;
    for (const auto& piece : user_defined_) {
      if (normalized.compare(pos, piece.size(), piece) == 0) {
        match = &piece;
        break;
      }
    }
    if (!match) {
      pos += unicode::utf8_length(static_cast<unsigned char>(normalized[pos]));
      continue;
    }
    flush(pos);
    out.push_back(ids_.at(*match));
    pos += match->size();
    plain_start = pos;
  }
  flush(normalized.size());
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else if (segment.end > segment.begin) {
      encode_normalized(normalize(text.substr(segment.begin, segment.end - segment.begin)), ids);
    }
  }
  return ids;
}

std::string SentencePieceTokenizer::token_text(int64_t id) const {
  if (const auto* added = added_.find(id)) return added->content;
  if (id < 0 || id >= static_cast<int64_t>(pieces_.size())) return {};
  const Piece& p = pieces_[id];
  switch (p.type) {
    case PieceType::Control: return {};
    case PieceType::Unknown: return unk_surface_;
    case PieceType::Byte: {
      int value = -1;
      std::sscanf(p.text.c_str(), "<0x%02X>", &value);
      return value >= 0 ? std::string(1, static_cast<char>(value)) : std::string();
    }
    default: {
      std::string text = p.text;
      size_t pos = 0;
      while ((pos = text.find(kSpace, pos)) != std::string::npos) text.replace(pos, 3, " ");
      return text;
    }
  }
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  bool at_start = true;
  for (int64_t id : ids) {
    const auto* added = added_.find(id);
    bool control =
        added ? added->special
              : (id >= 0 && id < static_cast<int64_t>(pieces_.size()) && pieces_[id].type == PieceType::Control);
    if (control && skip_special) continue;
    if (control && !added) continue;  // SentencePiece prints nothing for <s>, </s>
    std::string piece = token_text(id);
    if (at_start && add_dummy_prefix_ && !piece.empty() && piece[0] == ' ' && !added &&
        pieces_[id].type == PieceType::Normal) {
      piece.erase(0, 1);
    }
    at_start = false;
    out += piece;
  }
  return unicode::sanitize_utf8(out);
}

int64_t SentencePieceTokenizer::vocab_size() const {
  int64_t size = static_cast<int64_t>(pieces_.size());
  for (const auto& token : added_.tokens()) size = std::max(size, token.id + 1);
  return size;
}

std::optional<int64_t> SentencePieceTokenizer::token_to_id(const std::string& token) const {
  if (const auto* added = added_.find(token)) return added->id;
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

namespace {
std::optional<int64_t> valid_id(int32_t id, size_t size) {
  if (id < 0 || static_cast<size_t>(id) >= size) return std::nullopt;
  return id;
}
}  // namespace

std::optional<int64_t> SentencePieceTokenizer::bos_id() const { return valid_id(bos_id_, pieces_.size()); }
std::optional<int64_t> SentencePieceTokenizer::eos_id() const { return valid_id(eos_id_, pieces_.size()); }
std::optional<int64_t> SentencePieceTokenizer::pad_id() const { return valid_id(pad_id_, pieces_.size()); }
std::optional<int64_t> SentencePieceTokenizer::unk_id() const { return valid_id(unk_id_, pieces_.size()); }

std::vector<int64_t> SentencePieceTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
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
