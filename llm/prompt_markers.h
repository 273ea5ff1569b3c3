#pragma once
// Where media go in a prompt: the prompt cut at each marker ("<image>") of a medium that is present.
#include <string>
#include <vector>

namespace a2a {

struct PromptPiece {
  std::string text;  // text before the marker (or the tail)
  int medium = -1;   // the index of the marker that ends this piece, or -1 for the tail
};

// Cuts `prompt` at every occurrence of the markers, the earliest first; where two markers start at the
// same place, the first listed wins. Empty markers are never matched. The last piece is the text after
// the last marker (medium -1, possibly empty).
std::vector<PromptPiece> split_at_markers(const std::string& prompt, const std::vector<std::string>& markers);

}  // namespace a2a
