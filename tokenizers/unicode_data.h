#pragma once
// Unicode and HTML tables generated from Python's unicodedata / html.entities (gen_unicode_data.py).
#include <cstddef>
#include <cstdint>

namespace a2a::unicode_data {

struct LowerEntry {
  uint32_t code_point;
  uint32_t lower[3];
  uint8_t length;
};
struct CombiningRange {
  uint32_t first, last;
  uint8_t combining_class;
};
struct DecompositionEntry {
  uint32_t code_point;
  uint32_t offset;  // into kDecompositionData
  uint8_t length;
};
struct CompositionEntry {
  uint32_t first, second, composed;
};
struct HtmlEntity {
  const char* name;   // as in html.entities.html5: with its ';' where the entity needs one
  const char* value;  // UTF-8
};

struct CodePointRange {
  uint32_t first, last;
};
struct WidthEntry {
  uint32_t code_point;
  const char* value;  // UTF-8
};

extern const LowerEntry kLower[];
extern const size_t kLowerCount;
extern const CombiningRange kCombining[];
extern const size_t kCombiningCount;
extern const uint32_t kDecompositionData[];
extern const DecompositionEntry kDecompositions[];
extern const size_t kDecompositionCount;
extern const CompositionEntry kCompositions[];
extern const size_t kCompositionCount;
// Code points NFC may change (NFC_Quick_Check No/Maybe, or a non-zero combining class), as ranges.
extern const CodePointRange kNfcUnstable[];
extern const size_t kNfcUnstableCount;
extern const HtmlEntity kHtmlEntities[];
extern const size_t kHtmlEntityCount;
// ftfy's WIDTH_MAP (full-width and half-width forms), sorted.
extern const WidthEntry kWidthMap[];
extern const size_t kWidthMapCount;
// ftfy's entities in capitals ("&NTILDE;"), with their '&'.
extern const HtmlEntity kFtfyUpperEntities[];
extern const size_t kFtfyUpperEntityCount;

}  // namespace a2a::unicode_data
