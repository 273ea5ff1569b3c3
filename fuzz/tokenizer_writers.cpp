#include "fuzz/tokenizer_writers.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace a2a::fuzz {

namespace {

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_int(std::string& out, int field, int64_t value) {
  put_varint(out, static_cast<uint64_t>(field) << 3);
  put_varint(out, static_cast<uint64_t>(value));
}

void put_float(std::string& out, int field, float value) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 5);
  char raw[4];
  std::memcpy(raw, &value, 4);
  out.append(raw, 4);
}

template <typename T>
void put_raw(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

}  // namespace

std::string sentencepiece_model(const std::vector<PieceSpec>& pieces, int model_type, bool remove_extra_whitespaces,
                                int unk_id) {
  std::string model;
  for (const auto& p : pieces) {
    std::string piece;
    put_bytes(piece, 1, p.text);
    put_float(piece, 2, p.score);
    put_int(piece, 3, p.type);
    put_bytes(model, 1, piece);
  }
  std::string trainer;
  put_int(trainer, 3, model_type);
  put_int(trainer, 40, unk_id);
  put_int(trainer, 41, 1);
  put_int(trainer, 42, 2);
  put_int(trainer, 43, -1);
  put_bytes(model, 2, trainer);
  std::string normalizer;
  put_bytes(normalizer, 1, "identity");
  put_int(normalizer, 3, 1);
  put_int(normalizer, 4, remove_extra_whitespaces ? 1 : 0);
  put_bytes(model, 3, normalizer);
  return model;
}

std::string llama2c_tokenizer_file(const std::vector<PieceSpec>& pieces) {
  int32_t longest = 0;
  for (const auto& p : pieces) longest = std::max<int32_t>(longest, static_cast<int32_t>(p.text.size()));
  std::string out;
  put_raw(out, longest);
  for (const auto& p : pieces) {
    put_raw(out, p.score);
    put_raw(out, static_cast<int32_t>(p.text.size()));
    out += p.text;
  }
  return out;
}

}  // namespace a2a::fuzz
