// Chat templates (built-in and custom patterns) and the llm stage's cutting of the prompt at media markers.
#include "fuzz/fuzz_target.h"
#include "llm/chat_template.h"
#include "llm/prompt_markers.h"

namespace a2a::fuzz {

namespace {

// Input: pattern, system text, user text, markers (one per line), separated by "\n--8<--\n".
void chat_prompt(const Bytes& input) {
  const auto parts = split_input(input, 4);
  std::vector<std::string> markers;
  for (size_t pos = 0; pos < parts[3].size() && markers.size() < 8;) {
    size_t end = std::min(parts[3].find('\n', pos), parts[3].size());
    markers.push_back(parts[3].substr(pos, end - pos));
    pos = end + 1;
  }
  std::vector<std::string> prompts;
  for (const auto& name : builtin_chat_template_names()) prompts.push_back(builtin_chat_template(name).apply(parts[2]));
  try {
    prompts.push_back(custom_chat_template(parts[0], parts[1]).apply(parts[2]));
  } catch (const Error&) {
  }
  for (const auto& prompt : prompts) {
    std::string rebuilt;
    for (const auto& piece : split_at_markers(prompt, markers)) {
      rebuilt += piece.text;
      if (piece.medium >= 0) {
        fuzz_check(piece.medium < int(markers.size()) && !markers[piece.medium].empty(), "a piece names no marker");
        rebuilt += markers[piece.medium];
      }
    }
    fuzz_check(rebuilt == prompt, "the pieces and markers do not give the prompt back");
  }
}

std::vector<std::pair<std::string, Bytes>> chat_prompt_seeds() {
  return {{"vicuna.txt", join_parts({"{system}\n### Human: {user}\n### Assistant:", "You are helpful.",
                                     "<image> what is this? <audio>", "<image>\n<audio>"})},
          {"nested.txt", join_parts({"[{user}] {system} {user}", "{user}", "{system}<img><img>", "<img>\n\n<im"})},
          {"no_user.txt", join_parts({"{system} only", "", "hi", ""})}};
}

}  // namespace

A2A_FUZZ_TARGET("chat_prompt",
                "chat templates (every built-in, custom {system}/{user} patterns) and the llm stage's "
                "cutting of the prompt at media markers (pieces must rebuild the prompt)",
                chat_prompt, chat_prompt_seeds);

}  // namespace a2a::fuzz
