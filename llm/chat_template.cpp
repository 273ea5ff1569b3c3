#include "llm/chat_template.h"

#include "base/error.h"

namespace a2a {

std::string substitute_placeholders(const std::string& pattern, const std::string& system, const std::string& user) {
  std::string out;
  out.reserve(pattern.size() + system.size() + user.size());
  for (size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 8, "{system}") == 0) {
      out += system;
      i += 8;
    } else if (pattern.compare(i, 6, "{user}") == 0) {
      out += user;
      i += 6;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

std::string ChatTemplate::apply(const std::string& user, const std::string& system) const {
  return substitute_placeholders(system.empty() ? without_system : with_system, system, user);
}

std::vector<std::string> builtin_chat_template_names() {
  return {"none", "vicuna_v0", "vicuna_v1.1", "llama2", "llama3", "chatml"};
}

ChatTemplate builtin_chat_template(const std::string& name) {
  ChatTemplate t;
  t.name = name;
  if (name == "none") {
    t.with_system = "{system}\n{user}";
    t.without_system = "{user}";
  } else if (name == "vicuna_v0") {
    // NExT-GPT's prompt: "### Human: " + prompt + "\n### Assistant:", no system text by default.
    t.with_system = "{system}\n### Human: {user}\n### Assistant:";
    t.without_system = "### Human: {user}\n### Assistant:";
    t.stop_strings = {"###"};
  } else if (name == "vicuna_v1.1") {
    t.with_system = "{system} USER: {user} ASSISTANT:";
    t.without_system = "USER: {user} ASSISTANT:";
    t.default_system =
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions.";
    t.stop_strings = {"USER:"};
  } else if (name == "llama2") {
    t.with_system = "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]";
    t.without_system = "[INST] {user} [/INST]";
    t.stop_strings = {"[INST]"};
  } else if (name == "llama3") {
    const std::string user_turn = "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>";
    const std::string assistant = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    t.with_system = "<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>" + user_turn + assistant;
    t.without_system = user_turn + assistant;
    t.stop_tokens = {"<|eot_id|>"};
    t.stop_strings = {"<|eot_id|>"};
  } else if (name == "chatml") {
    const std::string user_turn = "<|im_start|>user\n{user}<|im_end|>\n";
    const std::string assistant = "<|im_start|>assistant\n";
    t.with_system = "<|im_start|>system\n{system}<|im_end|>\n" + user_turn + assistant;
    t.without_system = user_turn + assistant;
    t.stop_tokens = {"<|im_end|>"};
    t.stop_strings = {"<|im_end|>"};
  } else {
    std::string names;
    for (const auto& n : builtin_chat_template_names()) names += (names.empty() ? "" : ", ") + n;
    throw_config_error("unknown_chat_template",
                       "unknown chat template '" + name + "' (built-in: " + names + ", or a pattern with {user})");
  }
  return t;
}

ChatTemplate custom_chat_template(const std::string& pattern, const std::string& default_system) {
  if (pattern.find("{user}") == std::string::npos)
    throw_config_error("bad_chat_template", "a custom chat template needs a {user} placeholder: '" + pattern + "'");
  ChatTemplate t;
  t.name = "custom";
  t.with_system = pattern;
  t.without_system = pattern;
  t.default_system = default_system;
  return t;
}

}  // namespace a2a
