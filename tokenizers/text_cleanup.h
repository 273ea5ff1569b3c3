#pragma once
// Text clean-up applied before tokenizing by OpenAI CLIP's tokenizer: Python's html.unescape, the parts
// of ftfy.fix_text that change ordinary text, and CLIP's whitespace clean-up.
#include <string>
#include <string_view>

namespace a2a::tokenizers {

// Python's html.unescape: named entities (with the HTML5 rule for legacy names without ';'),
// decimal and hexadecimal character references.
std::string html_unescape(std::string_view text);

// ftfy 6.3.1 fix_text with its default configuration, line by line until nothing changes: HTML entities
// ending in ';' (skipped from the first line that contains '<' on), C1 controls read as Windows-1252,
// Latin ligatures, full-width and half-width forms, curly quotes, line breaks, terminal escapes,
// control characters, then NFC. Mojibake detection (fix_encoding) is not applied.
std::string ftfy_fix_text(std::string_view text);

// re.sub(r"\s+", " ", text).strip() with Python's notion of whitespace.
std::string collapse_whitespace(std::string_view text);

}  // namespace a2a::tokenizers
