#pragma once
// Readers for the vocabulary files of BPE tokenizers: vocab.json ({token: id}) and merges.txt.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace a2a::tokenizers {

// A tokenizer file's bytes. The largest real ones are tens of MB (a 256k-token tokenizer.json is about
// 35 MB); past 256 MiB the file is `too_large`, which bounds the vocabulary and merge counts with it.
constexpr uint64_t kMaxTokenizerFileBytes = uint64_t{256} << 20;
std::string read_file(const std::string& path);

// A token id written in a JSON file: an integer. A float (5e56 once reached an undefined conversion) or
// anything else is tokenizer_bad_vocab, naming `token` and `where`.
int64_t json_token_id(const nlohmann::json& value, const std::string& token, const std::string& where);

struct Vocabulary {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<std::string> tokens;  // by id; empty where an id has no token

  std::optional<int32_t> find(const std::string& token) const {
    auto it = ids.find(token);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  // `entries`: the tokens the file holds (in tokenizer.json, the vocabulary plus the added tokens). Throws an input
  // error naming `where` for an id outside check_token_id's bound.
  void insert(const std::string& token, int64_t id, int64_t entries, const std::string& where);
};

// Ids may leave gaps, but the by-id table is sized from the largest id, so a file of `entries` tokens must number
// them below entries + kTokenIdGap: a few bytes cannot make us allocate gigabytes.
constexpr int64_t kTokenIdGap = int64_t{1} << 20;
// Throws the input error "tokenizer_bad_vocab" unless 0 <= id < entries + kTokenIdGap.
void check_token_id(int64_t id, int64_t entries, const std::string& token, const std::string& where);

// Throws a2a::Error naming the file when it is missing or not a {string: integer} object.
Vocabulary read_vocab_json(const std::string& path);
// Merge lines "left right" (a "#version" first line is skipped).
std::vector<std::pair<std::string, std::string>> read_merges_txt(const std::string& path);

}  // namespace a2a::tokenizers
