#pragma once
// UTF-8 and Unicode helpers shared by the tokenizers: code point iteration, Python-compatible
// lower-casing and whitespace, NFC, GPT-2's byte-to-unicode table.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace a2a::unicode {

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for invalid lead bytes).
inline int utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at `pos` and advances `pos`. Invalid bytes decode to U+FFFD, one byte each.
uint32_t next_code_point(std::string_view text, size_t& pos);
std::vector<uint32_t> to_code_points(std::string_view text);
void append_utf8(std::string& out, uint32_t code_point);
std::string to_utf8(const std::vector<uint32_t>& code_points);
std::string to_utf8(uint32_t code_point);
// Splits into one string per code point (invalid bytes stay as single-byte pieces).
std::vector<std::string> split_characters(std::string_view text);
// Replaces invalid UTF-8 by U+FFFD, as Python's decode(errors="replace") does per maximal bad run.
std::string sanitize_utf8(std::string_view bytes);

// str.isspace() of Python.
bool is_python_space(uint32_t code_point);
// str.lower() of Python (full case mapping, e.g. U+0130 becomes two code points).
std::string python_lower(std::string_view text);

uint8_t combining_class(uint32_t code_point);
std::string nfc(std::string_view text);

// GPT-2's reversible map from bytes to printable code points ("Ġ" for a space).
const std::array<uint32_t, 256>& byte_to_code_point();
// The inverse; -1 for code points that do not stand for a byte.
int code_point_to_byte(uint32_t code_point);

}  // namespace a2a::unicode
