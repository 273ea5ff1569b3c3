#include "tokenizers/text_cleanup.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "tokenizers/unicode.h"
#include "tokenizers/unicode_data.h"

namespace a2a::tokenizers {
namespace {

using unicode::append_utf8;

const std::unordered_map<std::string_view, std::string_view>& html5_entities() {
  static const auto table = [] {
    std::unordered_map<std::string_view, std::string_view> t;
    for (size_t i = 0; i < unicode_data::kHtmlEntityCount; ++i) {
      t.emplace(unicode_data::kHtmlEntities[i].name, unicode_data::kHtmlEntities[i].value);
    }
    return t;
  }();
  return table;
}

// Windows-1252 for 0x80..0x9F; bytes it leaves undefined map to themselves (ftfy's "sloppy" codec).
uint32_t windows1252(uint32_t byte) {
  static const uint16_t table[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                     0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                     0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                     0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  return table[byte - 0x80];
}

bool is_invalid_codepoint(uint32_t cp) {
  return (cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || (cp >= 0x7F && cp <= 0x9F) ||
         (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

// Python's html._replace_charref for a numeric reference.
std::string numeric_charref(uint64_t num) {
  if (num == 0) return unicode::to_utf8(0xFFFD);
  if (num == 0x0D) return "\r";
  if (num >= 0x80 && num <= 0x9F) return unicode::to_utf8(windows1252(static_cast<uint32_t>(num)));
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return unicode::to_utf8(0xFFFD);
  if (is_invalid_codepoint(static_cast<uint32_t>(num))) return "";
  return unicode::to_utf8(static_cast<uint32_t>(num));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Parses "&#123" / "&#x7B" at `pos` (text[pos] == '&'); returns the length consumed (0 if none).
size_t parse_numeric(std::string_view text, size_t pos, uint64_t& value) {
  size_t i = pos + 2;
  if (pos + 2 > text.size() || text[pos + 1] != '#') return 0;
  bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
  if (hex) ++i;
  size_t start = i;
  value = 0;
  while (i < text.size() && (hex ? is_hex(text[i]) : is_digit(text[i]))) {
    int digit = is_digit(text[i]) ? text[i] - '0' : (text[i] | 0x20) - 'a' + 10;
    if (value < (1ull << 40)) value = value * (hex ? 16 : 10) + digit;
    ++i;
  }
  if (i == start) return 0;
  if (i < text.size() && text[i] == ';') ++i;
  return i - pos;
}

std::string ftfy_unescape(std::string_view text) {
  // ftfy's HTML_ENTITY_RE: &#?[0-9A-Za-z]{1,24};
  static const auto upper = [] {
    std::unordered_map<std::string_view, std::string_view> t;
    for (size_t i = 0; i < unicode_data::kFtfyUpperEntityCount; ++i) {
      t.emplace(unicode_data::kFtfyUpperEntities[i].name, unicode_data::kFtfyUpperEntities[i].value);
    }
    return t;
  }();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] != '&') {
      out += text[pos++];
      continue;
    }
    size_t i = pos + 1;
    bool numeric = i < text.size() && text[i] == '#';
    if (numeric) ++i;
    size_t start = i;
    while (i < text.size() && i - start < 24 && is_alnum(text[i])) ++i;
    if (i == start || i >= text.size() || text[i] != ';') {
      out += text[pos++];
      continue;
    }
    std::string_view entity = text.substr(pos, i + 1 - pos);
    std::string replacement(entity);
    if (numeric) {
      std::string unescaped = html_unescape(entity);
      if (unescaped.find(';') == std::string::npos) replacement = unescaped;
    } else {
      auto it = html5_entities().find(entity.substr(1));
      if (it != html5_entities().end()) {
        replacement = std::string(it->second);
      } else if (auto up = upper.find(entity); up != upper.end()) {
        replacement = std::string(up->second);
      }
    }
    out += replacement;
    pos = i + 1;
  }
  return out;
}

// ftfy's WIDTH_MAP; returns nullptr when the code point keeps its form.
const char* width_replacement(uint32_t cp) {
  if (cp != 0x3000 && (cp < 0xFF01 || cp > 0xFFEF)) return nullptr;
  const auto* begin = unicode_data::kWidthMap;
  const auto* end = begin + unicode_data::kWidthMapCount;
  const auto* it =
      std::lower_bound(begin, end, cp, [](const unicode_data::WidthEntry& e, uint32_t v) { return e.code_point < v; });
  return (it != end && it->code_point == cp) ? it->value : nullptr;
}

std::string fix_segment_once(std::string_view segment, bool unescape) {
  std::string text = unescape ? ftfy_unescape(segment) : std::string(segment);

  // Character-level fixes: C1 controls, ligatures, width, quotes, line breaks, control characters.
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    // Terminal escapes: ESC [ (digits | ';')* letter.
    if (text[pos] == '\x1b' && pos + 1 < text.size() && text[pos + 1] == '[') {
      size_t i = pos + 2;
      while (i < text.size() && (is_digit(text[i]) || text[i] == ';')) ++i;
      if (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) {
        pos = i + 1;
        continue;
      }
    }
    if (text[pos] == '\r') {
      out += '\n';
      pos += (pos + 1 < text.size() && text[pos + 1] == '\n') ? 2 : 1;
      continue;
    }
    uint32_t cp = unicode::next_code_point(text, pos);
    if (cp >= 0x80 && cp <= 0x9F) cp = windows1252(cp);
    switch (cp) {
      case 0x132: out += "IJ"; continue;
      case 0x133: out += "ij"; continue;
      case 0x149: out += "\xCA\xBCn"; continue;
      case 0x1F1: out += "DZ"; continue;
      case 0x1F2: out += "Dz"; continue;
      case 0x1F3: out += "dz"; continue;
      case 0x1C4: out += "D\xC5\xBD"; continue;
      case 0x1C5: out += "D\xC5\xBE"; continue;
      case 0x1C6: out += "d\xC5\xBE"; continue;
      case 0x1C7: out += "LJ"; continue;
      case 0x1C8: out += "Lj"; continue;
      case 0x1C9: out += "lj"; continue;
      case 0x1CA: out += "NJ"; continue;
      case 0x1CB: out += "Nj"; continue;
      case 0x1CC: out += "nj"; continue;
      case 0xFB00: out += "ff"; continue;
      case 0xFB01: out += "fi"; continue;
      case 0xFB02: out += "fl"; continue;
      case 0xFB03: out += "ffi"; continue;
      case 0xFB04: out += "ffl"; continue;
      case 0xFB05: out += "\xC5\xBFt"; continue;
      case 0xFB06: out += "st"; continue;
      default: break;
    }
    if (const char* wide = width_replacement(cp)) {
      // The replacements are plain characters that the later fixes leave alone.
      out += wide;
      continue;
    }
    if (cp == 0x2BC || (cp >= 0x2018 && cp <= 0x201B)) cp = '\'';
    if (cp >= 0x201C && cp <= 0x201F) cp = '"';
    if (cp == 0x2028 || cp == 0x2029 || cp == 0x85) cp = '\n';
    bool control = cp <= 0x08 || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F ||
                   (cp >= 0x206A && cp <= 0x206F) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFC);
    if (control) continue;
    append_utf8(out, cp);
  }
  return unicode::nfc(out);
}

}  // namespace

std::string html_unescape(std::string_view text) {
  const auto& entities = html5_entities();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] != '&' || pos + 1 >= text.size()) {
      out += text[pos++];
      continue;
    }
    if (text[pos + 1] == '#') {
      uint64_t value = 0;
      size_t consumed = parse_numeric(text, pos, value);
      if (consumed) {
        out += numeric_charref(value);
        pos += consumed;
      } else {
        out += text[pos++];
      }
      continue;
    }
    // Named: [^\t\n\f <&#;]{1,32};?
    size_t i = pos + 1;
    while (i < text.size() && i - pos - 1 < 32 && !std::strchr("\t\n\f <&#;", text[i])) ++i;
    if (i == pos + 1) {
      out += text[pos++];
      continue;
    }
    if (i < text.size() && text[i] == ';') ++i;
    std::string_view name = text.substr(pos + 1, i - pos - 1);
    auto it = entities.find(name);
    if (it != entities.end()) {
      out += it->second;
      pos = i;
      continue;
    }
    bool found = false;
    for (size_t length = name.size() - 1; length > 1; --length) {
      auto prefix = entities.find(name.substr(0, length));
      if (prefix != entities.end()) {
        out += prefix->second;
        out += name.substr(length);
        found = true;
        break;
      }
    }
    if (!found) {
      out += '&';
      out += name;
    }
    pos = i;
  }
  return out;
}

std::string ftfy_fix_text(std::string_view text) {
  std::string out;
  bool unescape = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t newline = text.find('\n', pos);
    size_t end = newline == std::string_view::npos ? text.size() : newline + 1;
    std::string segment(text.substr(pos, end - pos));
    // ftfy turns HTML unescaping off for the rest of the text once a segment contains '<'.
    if (segment.find('<') != std::string::npos) unescape = false;
    while (true) {
      std::string fixed = fix_segment_once(segment, unescape);
      if (fixed == segment) break;
      segment.swap(fixed);
    }
    out += segment;
    pos = end;
  }
  return out;
}

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    uint32_t cp = unicode::next_code_point(text, pos);
    if (unicode::is_python_space(cp)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty()) out += ' ';
    pending_space = false;
    out.append(text.substr(start, pos - start));
  }
  return out;
}

}  // namespace a2a::tokenizers
