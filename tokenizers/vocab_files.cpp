#include "tokenizers/vocab_files.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "base/json_parse.h"

namespace a2a::tokenizers {

std::string read_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw_input_error("tokenizer_file_missing", "tokenizer file " + path + " is not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxTokenizerFileBytes)
    throw_input_error("too_large", "tokenizer file " + path + " is " + std::to_string(size) +
                                       " bytes, over the limit of " + std::to_string(kMaxTokenizerFileBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("tokenizer_file_missing", "cannot open tokenizer file " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int64_t json_token_id(const nlohmann::json& value, const std::string& token, const std::string& where) {
  if (value.is_number_unsigned() && value.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(value.get<uint64_t>());
  if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
  throw_input_error("tokenizer_bad_vocab", where + ": the id of token \"" + token + "\" is not an integer: " +
                                               value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void check_token_id(int64_t id, int64_t entries, const std::string& token, const std::string& where) {
  const int64_t limit = entries + kTokenIdGap;
  if (id < 0 || id >= limit) {
    throw_input_error("tokenizer_bad_vocab", where + ": token \"" + token + "\" has id " + std::to_string(id) +
                                                 ", outside [0, " + std::to_string(limit) + ") for a file of " +
                                                 std::to_string(entries) + " tokens");
  }
}

void Vocabulary::insert(const std::string& token, int64_t id, int64_t entries, const std::string& where) {
  check_token_id(id, entries, token, where);
  ids[token] = static_cast<int32_t>(id);
  if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1);
  tokens[id] = token;
}

Vocabulary read_vocab_json(const std::string& path) {
  nlohmann::json json;
  try {
    json = parse_json_bounded(read_file(path), path);
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("tokenizer_bad_vocab", path + ": not valid JSON: " + e.what());
  }
  if (!json.is_object()) throw_input_error("tokenizer_bad_vocab", path + ": expected an object {token: id}");
  Vocabulary vocab;
  vocab.ids.reserve(json.size());
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (!it.value().is_number_integer()) {
      throw_input_error("tokenizer_bad_vocab", path + ": the id of token \"" + it.key() + "\" is not an integer");
    }
    vocab.insert(it.key(), json_token_id(it.value(), it.key(), path), static_cast<int64_t>(json.size()), path);
  }
  return vocab;
}

std::vector<std::pair<std::string, std::string>> read_merges_txt(const std::string& path) {
  std::string text = read_file(path);
  std::vector<std::pair<std::string, std::string>> merges;
  size_t pos = 0;
  int line_number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_number == 1 && line.rfind("#version", 0) == 0)) continue;
    size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= line.size()) {
      throw_input_error("tokenizer_bad_merges",
                        path + ":" + std::to_string(line_number) + ": expected \"left right\", got \"" + line + "\"");
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

}  // namespace a2a::tokenizers
