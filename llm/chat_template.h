#pragma once
// Chat prompt templates: a few named formats and custom patterns with {system} and {user}
// placeholders. Single-turn, plain substitution (not a Jinja engine). BOS is not part of a template:
// the caller adds the tokenizer's BOS id.
#include <string>
#include <vector>

namespace a2a {

struct ChatTemplate {
  std::string name;
  std::string with_system;     // pattern used when the system text is not empty
  std::string without_system;  // pattern used when it is empty
  std::string default_system;
  std::vector<std::string> stop_strings;  // text that ends the assistant's turn
  std::vector<std::string> stop_tokens;   // special tokens that end it ("<|eot_id|>"), looked up by the caller

  // The prompt for one user message. system_override replaces default_system when given.
  std::string apply(const std::string& user) const { return apply(user, default_system); }
  std::string apply(const std::string& user, const std::string& system) const;
};

// none (the text as is), vicuna_v0 (NExT-GPT's "### Human: … ### Assistant:"), vicuna_v1.1, llama2,
// llama3, chatml. Throws a2a::Error (config, "unknown_chat_template") listing the names.
ChatTemplate builtin_chat_template(const std::string& name);
std::vector<std::string> builtin_chat_template_names();

// A pattern with a {user} placeholder and optionally {system}; "\n" in YAML arrive as real newlines.
// Throws a2a::Error (config, "bad_chat_template") when {user} is missing.
ChatTemplate custom_chat_template(const std::string& pattern, const std::string& default_system = "");

// Replaces {system} and {user} in one pass (text inside the values is never substituted again).
std::string substitute_placeholders(const std::string& pattern, const std::string& system, const std::string& user);

}  // namespace a2a
