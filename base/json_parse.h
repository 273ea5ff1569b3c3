#pragma once
// JSON from users' files with a bounded nesting depth. nlohmann's dump() and the code walking a document recurse
// once per level, so a file nesting a million levels would overflow the stack; no real configuration, tokenizer
// or checkpoint header comes close to the limit.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace a2a {

constexpr int kMaxJsonDepth = 256;

// Throws the input error "json_too_deep" naming `file` when `text` opens more than kMaxJsonDepth arrays or objects
// inside each other. Does not otherwise validate the text.
void check_json_depth(std::string_view text, const std::string& file);

// check_json_depth, then nlohmann::json::parse; a syntax error is still nlohmann::json::parse_error, for the caller
// to report with its own code.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& file);

}  // namespace a2a
