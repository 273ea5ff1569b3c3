#pragma once
// UTF-8 validity: configs and --set arguments are text, and every string in them may end up in JSON.
#include <cstddef>
#include <string_view>

namespace a2a {

// The offset of the first byte that does not start or continue a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points past U+10FFFF included), or npos when the text is valid.
size_t invalid_utf8_offset(std::string_view text);

}  // namespace a2a
