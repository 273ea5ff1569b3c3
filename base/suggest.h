#pragma once
// "Did you mean ...?" for names a user misspelt: stage types, keys, ports, commands.
#include <string>
#include <vector>

namespace a2a {

// The closest candidate within a small edit distance (about a third of the word), or "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" for the closest candidate, or "" when none is close: appended to a message.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace a2a
