#include "fuzz/tokenizer_writers.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>

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

std::string sentencepiece_model(const std::vector<PieceSpec>& pieces, const TrainerSpec& trainer,
                                const NormalizerSpec& normalizer) {
  std::string model;
  for (const auto& p : pieces) {
    std::string piece;
    put_bytes(piece, 1, p.text);
    put_float(piece, 2, p.score);
    put_int(piece, 3, p.type);
    put_bytes(model, 1, piece);
  }
  std::string spec;
  put_int(spec, 3, trainer.model_type);
  if (trainer.treat_whitespace_as_suffix) put_int(spec, 24, 1);
  if (trainer.byte_fallback) put_int(spec, 35, 1);
  put_int(spec, 40, trainer.unk_id);
  put_int(spec, 41, 1);
  put_int(spec, 42, 2);
  put_int(spec, 43, -1);
  put_bytes(model, 2, spec);
  spec.clear();
  put_bytes(spec, 1, normalizer.name);
  if (!normalizer.precompiled_charsmap.empty()) put_bytes(spec, 2, normalizer.precompiled_charsmap);
  put_int(spec, 3, normalizer.add_dummy_prefix ? 1 : 0);
  put_int(spec, 4, normalizer.remove_extra_whitespaces ? 1 : 0);
  put_int(spec, 5, normalizer.escape_whitespaces ? 1 : 0);
  put_bytes(model, 3, spec);
  return model;
}

std::string sentencepiece_model(const std::vector<PieceSpec>& pieces, int model_type, bool remove_extra_whitespaces,
                                int unk_id) {
  TrainerSpec trainer;
  trainer.model_type = model_type;
  trainer.unk_id = unk_id;
  NormalizerSpec normalizer;
  normalizer.remove_extra_whitespaces = remove_extra_whitespaces;
  return sentencepiece_model(pieces, trainer, normalizer);
}

namespace {

struct TrieNode {
  std::map<unsigned char, size_t> children;
  int64_t value = -1;  // offset of the replacement
  unsigned char label = 0;
};

// Darts-clone's layout: a node at index p with children base ^ label stores offset p ^ base; its rule's value
// sits in the unit at base ^ 0 with bit 31 set. Bases are unique, so a label match proves the parent.
std::vector<uint32_t> double_array(const std::vector<TrieNode>& nodes) {
  std::vector<uint32_t> units(256, 0);
  std::vector<bool> used(256, false);
  std::set<size_t> bases;
  used[0] = true;
  std::vector<std::pair<size_t, size_t>> queue{{0, 0}};  // (node, index)
  for (size_t q = 0; q < queue.size(); ++q) {
    const auto [node, index] = queue[q];
    const TrieNode& n = nodes[node];
    std::vector<unsigned char> labels;
    if (n.value >= 0) labels.push_back(0);
    for (const auto& child : n.children) labels.push_back(child.first);
    size_t base = 1;
    auto fits = [&](size_t b) {
      if (bases.count(b)) return false;
      for (unsigned char l : labels) {
        size_t slot = b ^ l;
        if (slot == 0 || (slot < used.size() && used[slot])) return false;
      }
      return true;
    };
    while (!fits(base)) ++base;
    bases.insert(base);
    const size_t needed = ((base | 0xFF) + 1);
    if (units.size() < needed) {
      units.resize(needed, 0);
      used.resize(needed, false);
    }
    for (unsigned char l : labels) used[base ^ l] = true;
    const uint32_t offset = static_cast<uint32_t>(index ^ base);
    units[index] = (offset << 10) | (n.value >= 0 ? 1u << 8 : 0u) | n.label;
    if (n.value >= 0) units[base] = static_cast<uint32_t>(n.value) | (1u << 31);
    for (const auto& [label, child] : n.children) queue.emplace_back(child, base ^ label);
  }
  return units;
}

}  // namespace

std::string precompiled_charsmap(const std::vector<std::pair<std::string, std::string>>& rules) {
  std::vector<TrieNode> nodes(1);
  std::string replacements;
  for (const auto& [from, to] : rules) {
    size_t node = 0;
    for (unsigned char c : from) {
      auto it = nodes[node].children.find(c);
      if (it == nodes[node].children.end()) {
        nodes.push_back({});
        nodes.back().label = c;
        it = nodes[node].children.emplace(c, nodes.size() - 1).first;
      }
      node = it->second;
    }
    nodes[node].value = static_cast<int64_t>(replacements.size());
    replacements += to;
    replacements += '\0';
  }
  const std::vector<uint32_t> units = double_array(nodes);
  std::string blob;
  put_raw(blob, static_cast<uint32_t>(units.size() * 4));
  for (uint32_t unit : units) put_raw(blob, unit);
  return blob + replacements;
}

std::string base64_encode(const std::string& bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    const size_t present = std::min<size_t>(3, bytes.size() - i);
    for (size_t k = 0; k < 4; ++k) out += k <= present ? kAlphabet[(chunk >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
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
