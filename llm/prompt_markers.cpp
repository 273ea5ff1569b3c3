#include "llm/prompt_markers.h"

namespace a2a {

std::vector<PromptPiece> split_at_markers(const std::string& prompt, const std::vector<std::string>& markers) {
  std::vector<PromptPiece> pieces;
  size_t pos = 0;
  for (;;) {
    size_t best = std::string::npos;
    int medium = -1;
    for (size_t m = 0; m < markers.size(); ++m) {
      if (markers[m].empty()) continue;
      const size_t at = prompt.find(markers[m], pos);
      if (at < best) best = at, medium = static_cast<int>(m);
    }
    if (medium < 0) {
      pieces.push_back({prompt.substr(pos), -1});
      return pieces;
    }
    pieces.push_back({prompt.substr(pos, best - pos), medium});
    pos = best + markers[medium].size();
  }
}

}  // namespace a2a
