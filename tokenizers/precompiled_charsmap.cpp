#include "tokenizers/precompiled_charsmap.h"

#include <cstring>

#include "base/error.h"

namespace a2a::tokenizers {
namespace {

constexpr const char* kReplacementCharacter = "\xEF\xBF\xBD";
// Checking the rules probes 255 labels per reachable unit, so the blob is bounded well above real ones.
constexpr size_t kMaxCharsMapBytes = size_t{16} << 20;

// A Darts-clone unit: label in bits 0-7 (bit 31 set on value units, so they never match a label), has_leaf in
// bit 8, the offset to the children in bits 10-31 (shifted by 8 more when bit 9 is set).
bool has_leaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }
uint32_t unit_value(uint32_t unit) { return unit & ((1U << 31) - 1); }
uint32_t unit_label(uint32_t unit) { return unit & ((1U << 31) | 0xFF); }
size_t unit_offset(uint32_t unit) { return static_cast<size_t>(unit >> 10) << ((unit & (1U << 9)) >> 6); }

bool is_trail_byte(unsigned char c) { return (c & 0xC0) == 0x80; }
bool is_valid_code_point(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

}  // namespace

size_t valid_utf8_length(std::string_view text) {
  if (text.empty()) return 0;
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  if (text.size() >= 2 && (lead & 0xE0) == 0xC0 && is_trail_byte(byte(1))) {
    uint32_t c = ((lead & 0x1Fu) << 6) | (byte(1) & 0x3Fu);
    return c >= 0x80 ? 2 : 0;
  }
  if (text.size() >= 3 && (lead & 0xF0) == 0xE0 && is_trail_byte(byte(1)) && is_trail_byte(byte(2))) {
    uint32_t c = ((lead & 0x0Fu) << 12) | ((byte(1) & 0x3Fu) << 6) | (byte(2) & 0x3Fu);
    return c >= 0x800 && is_valid_code_point(c) ? 3 : 0;
  }
  if (text.size() >= 4 && (lead & 0xF8) == 0xF0 && is_trail_byte(byte(1)) && is_trail_byte(byte(2)) &&
      is_trail_byte(byte(3))) {
    uint32_t c = ((lead & 0x07u) << 18) | ((byte(1) & 0x3Fu) << 12) | ((byte(2) & 0x3Fu) << 6) | (byte(3) & 0x3Fu);
    return c >= 0x10000 && is_valid_code_point(c) ? 4 : 0;
  }
  return 0;
}

std::pair<std::string_view, size_t> normalize_one_character(std::string_view input) {
  const size_t length = valid_utf8_length(input);
  if (length == 0) return {kReplacementCharacter, 1};
  return {input.substr(0, length), length};
}

PrecompiledCharsMap::PrecompiledCharsMap(std::string_view blob, const std::string& where) {
  auto fail = [&](const std::string& what) {
    throw_input_error("tokenizer_bad_model", where + ": precompiled_charsmap " + what);
  };
  if (blob.size() <= 4) fail("is " + std::to_string(blob.size()) + " bytes, too short for a trie");
  if (blob.size() > kMaxCharsMapBytes) {
    throw_input_error("too_large", where + ": precompiled_charsmap is " + std::to_string(blob.size()) +
                                       " bytes, more than " + std::to_string(kMaxCharsMapBytes) +
                                       " (nmt_nfkc's is about 240 kB)");
  }
  uint32_t trie_bytes = 0;
  for (int i = 3; i >= 0; --i) trie_bytes = (trie_bytes << 8) | static_cast<unsigned char>(blob[i]);
  if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4) {
    fail("declares a trie of " + std::to_string(trie_bytes) + " bytes in a blob of " + std::to_string(blob.size()) +
         " (it must be a non-zero multiple of 4 that fits)");
  }
  units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < units_.size(); ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(blob.data()) + 4 + 4 * i;
    units_[i] = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
                (static_cast<uint32_t>(p[3]) << 24);
  }
  replacements_ = std::string(blob.substr(4 + trie_bytes));
  check_rules(where);
}

// Visits every node reachable from the root once (a hostile array may have cycles) and checks that each rule's
// value unit lies in the array and points at a NUL-terminated replacement, so that lookups need no checks there.
void PrecompiledCharsMap::check_rules(const std::string& where) const {
  std::vector<bool> seen(units_.size(), false);
  std::vector<size_t> pending{0};
  seen[0] = true;
  while (!pending.empty()) {
    const size_t node = pending.back();
    pending.pop_back();
    const size_t base = node ^ unit_offset(units_[node]);
    if (node != 0 && has_leaf(units_[node])) {
      if (base >= units_.size()) {
        throw_input_error("tokenizer_bad_model", where + ": precompiled_charsmap trie unit " + std::to_string(node) +
                                                     " points at " + std::to_string(base) + ", outside its " +
                                                     std::to_string(units_.size()) + " units");
      }
      const uint32_t value = unit_value(units_[base]);
      if (value >= replacements_.size() || replacements_.find('\0', value) == std::string::npos) {
        throw_input_error("tokenizer_bad_model", where + ": precompiled_charsmap rule at trie unit " +
                                                     std::to_string(node) + " points at replacement byte " +
                                                     std::to_string(value) + ", past the NUL-terminated strings (" +
                                                     std::to_string(replacements_.size()) + " bytes)");
      }
    }
    for (uint32_t label = 1; label < 256; ++label) {
      const size_t child = base ^ label;
      if (child < units_.size() && unit_label(units_[child]) == label && !seen[child]) {
        seen[child] = true;
        pending.push_back(child);
      }
    }
  }
}

size_t PrecompiledCharsMap::longest_rule(std::string_view input, uint32_t& value) const {
  size_t longest = 0;
  size_t node = unit_offset(units_[0]);
  for (size_t i = 0; i < input.size(); ++i) {
    const auto label = static_cast<unsigned char>(input[i]);
    node ^= label;
    if (node >= units_.size() || unit_label(units_[node]) != label) break;
    const uint32_t unit = units_[node];
    node ^= unit_offset(unit);
    if (has_leaf(unit)) {  // check_rules made sure `node` is in range here
      longest = i + 1;
      value = unit_value(units_[node]);
    }
  }
  return longest;
}

std::pair<std::string_view, size_t> PrecompiledCharsMap::normalize_prefix(std::string_view input) const {
  uint32_t value = 0;
  const size_t length = longest_rule(input, value);
  if (length == 0) return normalize_one_character(input);
  return {std::string_view(replacements_.c_str() + value), length};
}

std::string PrecompiledCharsMap::normalize(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const auto [replacement, consumed] = normalize_prefix(text);
    out += replacement;
    text.remove_prefix(consumed);
  }
  return out;
}

}  // namespace a2a::tokenizers
