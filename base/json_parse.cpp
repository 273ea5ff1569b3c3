#include "base/json_parse.h"

#include "base/error.h"

namespace a2a {

void check_json_depth(std::string_view text, const std::string& file) {
  // Brackets inside strings do not nest; the parser rejects anything else the scan lets through.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw_input_error("json_too_deep", file + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                                               " levels (at byte " + std::to_string(i) + ")");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

nlohmann::json parse_json_bounded(std::string_view text, const std::string& file) {
  check_json_depth(text, file);
  return nlohmann::json::parse(text.begin(), text.end());
}

}  // namespace a2a
