#pragma once
// Standard base64 (RFC 4648, '+' and '/'), as tokenizer.json stores a Precompiled normalizer's charsmap.
#include <string>
#include <string_view>

namespace a2a::tokenizers {

// Padding is optional; any other character outside the alphabet, or a dangling sixth of a byte, is the input
// error "tokenizer_bad_json" naming `where` and `what`.
std::string decode_base64(std::string_view text, const std::string& where, const std::string& what);

}  // namespace a2a::tokenizers
