#include "tokenizers/unicode.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizers/unicode_data.h"

namespace a2a::unicode {

uint32_t next_code_point(std::string_view text, size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  int length = utf8_length(lead);
  if (length == 1) {
    ++pos;
    return lead < 0x80 ? lead : 0xFFFD;
  }
  if (pos + length > text.size()) {
    ++pos;
    return 0xFFFD;
  }
  uint32_t cp = lead & (0x7F >> length);
  for (int i = 1; i < length; ++i) {
    const auto c = static_cast<unsigned char>(text[pos + i]);
    if ((c & 0xC0) != 0x80) {
      ++pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  pos += length;
  return cp;
}

std::vector<uint32_t> to_code_points(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) out.push_back(next_code_point(text, pos));
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string to_utf8(const std::vector<uint32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (uint32_t cp : code_points) append_utf8(out, cp);
  return out;
}

std::string to_utf8(uint32_t code_point) {
  std::string out;
  append_utf8(out, code_point);
  return out;
}

std::vector<std::string> split_characters(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    next_code_point(text, pos);
    out.emplace_back(text.substr(start, pos - start));
  }
  return out;
}

std::string sanitize_utf8(std::string_view bytes) {
  // Each maximal invalid subsequence becomes one U+FFFD, as Python's errors="replace" and Rust's
  // from_utf8_lossy do.
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[pos]);
    if (lead < 0x80) {
      out += static_cast<char>(lead);
      ++pos;
      continue;
    }
    int length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    }
    if (length == 0) {
      append_utf8(out, 0xFFFD);
      ++pos;
      continue;
    }
    int valid = 1;
    while (valid < length && pos + valid < bytes.size()) {
      const auto c = static_cast<unsigned char>(bytes[pos + valid]);
      unsigned char lo = valid == 1 ? low : 0x80, hi = valid == 1 ? high : 0xBF;
      if (c < lo || c > hi) break;
      ++valid;
    }
    if (valid == length) {
      out.append(bytes.substr(pos, length));
    } else {
      append_utf8(out, 0xFFFD);
    }
    pos += valid;
  }
  return out;
}

bool is_python_space(uint32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string python_lower(std::string_view text) {
  using unicode_data::kLower;
  using unicode_data::kLowerCount;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos]);
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
      ++pos;
      continue;
    }
    size_t start = pos;
    uint32_t cp = next_code_point(text, pos);
    const auto* end = kLower + kLowerCount;
    const auto* it = std::lower_bound(kLower, end, cp,
                                      [](const unicode_data::LowerEntry& e, uint32_t v) { return e.code_point < v; });
    if (it != end && it->code_point == cp) {
      for (int i = 0; i < it->length; ++i) append_utf8(out, it->lower[i]);
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
  return out;
}

uint8_t combining_class(uint32_t cp) {
  using unicode_data::kCombining;
  using unicode_data::kCombiningCount;
  if (cp < 0x300) return 0;
  const auto* end = kCombining + kCombiningCount;
  const auto* it = std::upper_bound(kCombining, end, cp,
                                    [](uint32_t v, const unicode_data::CombiningRange& r) { return v < r.first; });
  if (it == kCombining) return 0;
  --it;
  return cp <= it->last ? it->combining_class : 0;
}

namespace {

constexpr uint32_t kHangulBase = 0xAC00, kLeadBase = 0x1100, kVowelBase = 0x1161, kTrailBase = 0x11A7;
constexpr uint32_t kLeadCount = 19, kVowelCount = 21, kTrailCount = 28;
constexpr uint32_t kSyllableCount = kLeadCount * kVowelCount * kTrailCount;

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kHangulBase && cp < kHangulBase + kSyllableCount) {
    uint32_t index = cp - kHangulBase;
    out.push_back(kLeadBase + index / (kVowelCount * kTrailCount));
    out.push_back(kVowelBase + (index % (kVowelCount * kTrailCount)) / kTrailCount);
    if (index % kTrailCount) out.push_back(kTrailBase + index % kTrailCount);
    return;
  }
  using unicode_data::kDecompositions;
  const auto* end = kDecompositions + unicode_data::kDecompositionCount;
  const auto* it = std::lower_bound(
      kDecompositions, end, cp, [](const unicode_data::DecompositionEntry& e, uint32_t v) { return e.code_point < v; });
  if (it != end && it->code_point == cp) {
    for (int i = 0; i < it->length; ++i) out.push_back(unicode_data::kDecompositionData[it->offset + i]);
  } else {
    out.push_back(cp);
  }
}

bool compose_pair(uint32_t first, uint32_t second, uint32_t& composed) {
  if (first >= kLeadBase && first < kLeadBase + kLeadCount && second >= kVowelBase &&
      second < kVowelBase + kVowelCount) {
    composed = kHangulBase + ((first - kLeadBase) * kVowelCount + (second - kVowelBase)) * kTrailCount;
    return true;
  }
  if (first >= kHangulBase && first < kHangulBase + kSyllableCount && (first - kHangulBase) % kTrailCount == 0 &&
      second > kTrailBase && second < kTrailBase + kTrailCount) {
    composed = first + (second - kTrailBase);
    return true;
  }
  using unicode_data::kCompositions;
  const auto* end = kCompositions + unicode_data::kCompositionCount;
  const auto* it =
      std::lower_bound(kCompositions, end, std::make_pair(first, second),
                       [](const unicode_data::CompositionEntry& e, const std::pair<uint32_t, uint32_t>& v) {
                         return e.first < v.first || (e.first == v.first && e.second < v.second);
                       });
  if (it != end && it->first == first && it->second == second) {
    composed = it->composed;
    return true;
  }
  return false;
}

}  // namespace

std::string nfc(std::string_view text) {
  // Quick check: text without any code point that NFC may touch is already NFC.
  bool stable = true;
  for (size_t pos = 0; pos < text.size() && stable;) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    uint32_t cp = next_code_point(text, pos);
    if (cp < 0x300) continue;
    const auto* begin = unicode_data::kNfcUnstable;
    const auto* end = begin + unicode_data::kNfcUnstableCount;
    const auto* it =
        std::upper_bound(begin, end, cp, [](uint32_t v, const unicode_data::CodePointRange& r) { return v < r.first; });
    if (it != begin && cp <= (it - 1)->last) stable = false;
  }
  if (stable) return std::string(text);

  std::vector<uint32_t> decomposed;
  decomposed.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) decompose(next_code_point(text, pos), decomposed);

  // Canonical ordering: stable sort each run of non-starters by combining class.
  for (size_t i = 0; i < decomposed.size();) {
    if (combining_class(decomposed[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < decomposed.size() && combining_class(decomposed[j]) != 0) ++j;
    std::stable_sort(decomposed.begin() + i, decomposed.begin() + j,
                     [](uint32_t a, uint32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }

  // Canonical composition.
  std::vector<uint32_t> out;
  out.reserve(decomposed.size());
  size_t starter = SIZE_MAX;
  int last_class = -1;
  for (uint32_t cp : decomposed) {
    int cls = combining_class(cp);
    uint32_t composed = 0;
    if (starter != SIZE_MAX && (last_class < cls || (last_class == 0 && out.size() == starter + 1)) &&
        compose_pair(out[starter], cp, composed)) {
      out[starter] = composed;
      continue;
    }
    if (cls == 0) {
      starter = out.size();
      last_class = 0;
    } else {
      last_class = cls;
    }
    out.push_back(cp);
  }
  return to_utf8(out);
}

const std::array<uint32_t, 256>& byte_to_code_point() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<uint32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

int code_point_to_byte(uint32_t code_point) {
  static const std::unordered_map<uint32_t, int> inverse = [] {
    std::unordered_map<uint32_t, int> m;
    const auto& t = byte_to_code_point();
    for (int b = 0; b < 256; ++b) m[t[b]] = b;
    return m;
  }();
  auto it = inverse.find(code_point);
  return it == inverse.end() ? -1 : it->second;
}

}  // namespace a2a::unicode
