#include "tokenizers/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "tokenizers/unicode.h"
#include "tokenizers/vocab_files.h"

namespace a2a {
namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

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
  bool whitespace_as_suffix = false, denormalizer_rules = false;
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
        if (field == 44 && wire == 2) {
          unk_surface_ = std::string(reader.bytes());
          continue;
        }
        if (wire != 0) {
          reader.skip(wire);
          continue;
        }
        uint64_t value = reader.varint();
        switch (field) {
          case 3: model_type_ = static_cast<ModelType>(value); break;
          case 24: whitespace_as_suffix = value != 0; break;
          case 35: byte_fallback_ = value != 0; break;
          case 40: unk_id_ = static_cast<int32_t>(value); break;
          case 41: bos_id_ = static_cast<int32_t>(value); break;
          case 42: eos_id_ = static_cast<int32_t>(value); break;
          case 43: pad_id_ = static_cast<int32_t>(value); break;
          default: break;
        }
      }
    } else if ((field == 3 || field == 5) && wire == 2) {  // normalizer_spec, denormalizer_spec
      const bool normalizer = field == 3;
      ProtoReader reader(model.bytes(), path);
      while (reader.next(field, wire)) {
        if (field == 2 && wire == 2) {
          std::string_view charsmap = reader.bytes();
          if (normalizer) charsmap_blob_ = std::string(charsmap);
          denormalizer_rules = denormalizer_rules || (!normalizer && !charsmap.empty());
        } else if (normalizer && field >= 3 && field <= 5 && wire == 0) {
          bool value = reader.varint() != 0;
          (field == 3 ? add_dummy_prefix_ : field == 4 ? remove_extra_whitespaces_ : escape_whitespaces_) = value;
        } else {
          reader.skip(wire);
        }
      }
    } else {
      model.skip(wire);
    }
  }
  if (whitespace_as_suffix) unsupported("treat_whitespace_as_suffix");
  if (denormalizer_rules) unsupported("a denormalizer_spec with rules");
  check_model();
}

[[noreturn]] void SentencePieceTokenizer::unsupported(const std::string& what) const {
  throw_input_error("tokenizer_unsupported", path_ + ": SentencePiece model with " + what + " is not supported");
}

void SentencePieceTokenizer::check_model() {
  const std::string& path = path_;
  if (pieces_.empty()) throw_input_error("tokenizer_bad_model", path + ": SentencePiece model has no pieces");
  if (model_type_ != ModelType::Bpe && model_type_ != ModelType::Unigram) {
    unsupported("model type " + std::to_string(static_cast<int>(model_type_)) + " (only BPE and unigram are)");
  }
  if (!charsmap_blob_.empty()) charsmap_ = std::make_unique<tokenizers::PrecompiledCharsMap>(charsmap_blob_, path);
  // Every unknown character becomes this id, so it must name a piece (SentencePiece refuses such models too).
  if (unk_id_ < 0 || unk_id_ >= static_cast<int64_t>(pieces_.size()))
    throw_input_error("tokenizer_bad_model", path + ": unk_id " + std::to_string(unk_id_) + " is not one of its " +
                                                 std::to_string(pieces_.size()) + " pieces");
  std::vector<tokenizers::UnigramModel::Piece> lattice_pieces = index_pieces();
  // The unknown piece is the one of type UNKNOWN, as in SentencePiece's ModelInterface.
  auto unknown = [&](const Piece& p) { return p.type == PieceType::Unknown; };
  if (std::count_if(pieces_.begin(), pieces_.end(), unknown) != 1) {
    throw_input_error("tokenizer_bad_model", path + ": a SentencePiece model needs exactly one piece of type UNKNOWN");
  }
  unk_id_ = static_cast<int32_t>(std::find_if(pieces_.begin(), pieces_.end(), unknown) - pieces_.begin());
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
  } else {
    unigram_ = std::make_unique<tokenizers::UnigramModel>(std::move(lattice_pieces), unk_id_, path);
  }
  if (byte_fallback_ && std::count(byte_ids_.begin(), byte_ids_.end(), -1) > 0) {
    throw_input_error("tokenizer_bad_model", path + ": byte_fallback is set but some <0xXX> pieces are missing");
  }
}

// Checks every piece and indexes it: by text, byte value, user-defined; returns the pieces as the lattice sees them.
std::vector<tokenizers::UnigramModel::Piece> SentencePieceTokenizer::index_pieces() {
  const std::string& path = path_;
  byte_ids_.assign(256, -1);
  std::vector<tokenizers::UnigramModel::Piece> lattice_pieces;
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const Piece& p = pieces_[id];
    // SentencePiece never writes an empty piece; one would match everywhere without consuming text.
    if (p.text.empty()) throw_input_error("tokenizer_bad_format", path + ": piece " + std::to_string(id) + " is empty");
    if (!std::isfinite(p.score)) {
      throw_input_error("tokenizer_bad_model",
                        path + ": piece " + std::to_string(id) + " has the score " + std::to_string(p.score));
    }
    ids_.emplace(p.text, static_cast<int32_t>(id));
    if (p.type == PieceType::Byte) {
      int value = -1;
      if (p.text.size() == 6 && std::sscanf(p.text.c_str(), "<0x%02X>", &value) == 1 && value >= 0 && value < 256) {
        byte_ids_[value] = static_cast<int32_t>(id);
      }
    }
    if (p.type == PieceType::UserDefined) {
      user_defined_.push_back(p.text);
      user_defined_trie_.insert(p.text, static_cast<int32_t>(id));
    }
    using Kind = tokenizers::UnigramModel::Kind;
    Kind kind = p.type == PieceType::Normal        ? Kind::Scored
                : p.type == PieceType::UserDefined ? Kind::UserDefined
                : p.type == PieceType::Unused      ? Kind::Unused
                                                   : Kind::Reserved;
    lattice_pieces.push_back({p.text, p.score, kind});
  }
  std::sort(user_defined_.begin(), user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return lattice_pieces;
}

// Normalizer::NormalizePrefix: a user-defined piece is copied unchanged, else the charsmap's longest rule applies,
// else one character is copied.
std::pair<std::string_view, size_t> SentencePieceTokenizer::normalize_prefix(std::string_view input) const {
  size_t user_defined = 0;
  user_defined_trie_.for_each_prefix(input, [&](size_t length, int32_t) { user_defined = length; });
  if (user_defined > 0) return {input.substr(0, user_defined), user_defined};
  if (charsmap_) return charsmap_->normalize_prefix(input);
  return tokenizers::normalize_one_character(input);
}

// Normalizer::Normalize: whitespace is judged on the normalized pieces, so that a rule mapping a tab or an
// ideographic space to " " counts as a space.
std::string SentencePieceTokenizer::normalize(std::string_view input) const {
  if (remove_extra_whitespaces_) {
    while (!input.empty()) {
      const auto [piece, consumed] = normalize_prefix(input);
      if (piece != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return {};
  const std::string_view space = escape_whitespaces_ ? std::string_view(kSpace) : std::string_view(" ");
  std::string out;
  out.reserve(input.size() * 3);
  if (add_dummy_prefix_) out += space;
  bool previous_space = remove_extra_whitespaces_;
  while (!input.empty()) {
    auto [piece, consumed] = normalize_prefix(input);
    while (previous_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    if (!piece.empty()) {
      for (char c : piece) {
        if (c == ' ')
          out += space;
        else
          out += c;
      }
      previous_space = piece.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!remove_extra_whitespaces_) previous_space = false;
  }
  if (remove_extra_whitespaces_) {
    while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
      out.resize(out.size() - space.size());
  }
  return out;
}

void SentencePieceTokenizer::emit_unknown(std::string_view text, Pieces& out) const {
  if (byte_fallback_) {
    for (unsigned char b : text) out.emplace_back(byte_ids_[b], pieces_[byte_ids_[b]].text);
    return;
  }
  out.emplace_back(unk_id_, std::string(text));
}

void SentencePieceTokenizer::encode_bpe(const std::string& text, Pieces& out) const {
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
      out.emplace_back(id, pieces_[id].text);
    }
  }
}

void SentencePieceTokenizer::encode_unigram(const std::string& text, Pieces& out) const {
  for (const auto& token : unigram_->encode(text)) {
    const std::string_view surface = std::string_view(text).substr(token.begin, token.end - token.begin);
    if (token.id == unk_id_)
      emit_unknown(surface, out);
    else
      out.emplace_back(token.id, std::string(surface));
  }
}

void SentencePieceTokenizer::encode_normalized(const std::string& normalized, Pieces& out) const {
  if (model_type_ == ModelType::Unigram) {
    encode_unigram(normalized, out);  // user-defined pieces win in the lattice by their score
    return;
  }
  // BPE: user-defined pieces are whole symbols; the text between them is merged.
  size_t plain_start = 0;
  auto flush = [&](size_t end) {
    if (end > plain_start) encode_bpe(normalized.substr(plain_start, end - plain_start), out);
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
    out.emplace_back(ids_.at(*match), *match);
    pos += match->size();
    plain_start = pos;
  }
  flush(normalized.size());
}

SentencePieceTokenizer::Pieces SentencePieceTokenizer::encode_pieces(const std::string& text) const {
  Pieces pieces;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      pieces.emplace_back(static_cast<int32_t>(segment.id), text.substr(segment.begin, segment.end - segment.begin));
    } else if (segment.end > segment.begin) {
      encode_normalized(normalize(std::string_view(text).substr(segment.begin, segment.end - segment.begin)), pieces);
    }
  }
  return pieces;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& piece : encode_pieces(text)) ids.push_back(piece.first);
  return ids;
}

std::vector<std::string> SentencePieceTokenizer::encode_as_pieces(const std::string& text) const {
  std::vector<std::string> out;
  for (auto& piece : encode_pieces(text)) out.push_back(std::move(piece.second));
  return out;
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

// SentencePieceProcessor::Decode: while nothing has been written, a piece loses one leading U+2581 (the dummy
// prefix; with remove_extra_whitespaces every piece until text appears); byte pieces are joined and an invalid
// UTF-8 byte among them becomes U+FFFD; control pieces print nothing, the unknown piece its unk_surface.
std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out, bytes;
  bool at_start = true, start_space_seen = false;
  auto flush_bytes = [&] {
    for (std::string_view rest(bytes); !rest.empty();) {
      const auto [character, consumed] = tokenizers::normalize_one_character(rest);
      out += character;
      rest.remove_prefix(consumed);
    }
    bytes.clear();
  };
  for (int64_t id : ids) {
    if (const auto* added = added_.find(id)) {
      flush_bytes();
      if (!(added->special && skip_special)) out += added->content;
      continue;
    }
    if (id < 0 || id >= static_cast<int64_t>(pieces_.size())) continue;
    const Piece& p = pieces_[id];
    if (p.type == PieceType::Byte) {
      bytes += token_text(id);
      continue;
    }
    flush_bytes();
    if (start_space_seen || !out.empty()) at_start = false;
    start_space_seen = false;
    if (p.type == PieceType::Control || p.type == PieceType::Unknown) {
      out += token_text(id);
      continue;
    }
    std::string_view text(p.text);
    if (at_start && (add_dummy_prefix_ || remove_extra_whitespaces_) && text.compare(0, 3, kSpace) == 0) {
      text.remove_prefix(3);
      start_space_seen = !remove_extra_whitespaces_;
    }
    for (size_t pos = 0; pos < text.size();) {
      if (text.compare(pos, 3, kSpace) == 0) {
        out += ' ';
        pos += 3;
      } else {
        out += text[pos++];
      }
    }
  }
  flush_bytes();
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
