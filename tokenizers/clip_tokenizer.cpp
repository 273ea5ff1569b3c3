#include "tokenizers/clip_tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_parse.h"
#include "tokenizers/text_cleanup.h"
#include "tokenizers/unicode.h"

namespace a2a {
namespace {

constexpr const char* kStartToken = "<|startoftext|>";
constexpr const char* kEndToken = "<|endoftext|>";
constexpr const char* kWordEnd = "</w>";
constexpr size_t kWordCacheLimit = 1 << 16;

// The pad token named by a Hugging Face tokenizer folder, if any.
std::optional<std::string> configured_pad_token(const std::filesystem::path& folder) {
  std::error_code ec;
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    auto path = folder / name;
    if (!std::filesystem::exists(path, ec)) continue;
    nlohmann::json json;
    try {
      json = parse_json_bounded(tokenizers::read_file(path.string()), path.string());
    } catch (const nlohmann::json::exception& e) {
      throw_input_error("tokenizer_bad_config", path.string() + ": not valid JSON: " + e.what());
    }
    if (!json.contains("pad_token")) continue;
    const auto& pad = json["pad_token"];
    if (pad.is_string()) return pad.get<std::string>();
    if (pad.is_object() && pad.contains("content")) return pad["content"].get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

ClipTokenizer::ClipTokenizer(const std::string& vocab_json, const std::string& merges_txt) {
  vocab_ = tokenizers::read_vocab_json(vocab_json);
  const auto& byte_chars = unicode::byte_to_code_point();
  byte_ids_.resize(256);
  byte_end_ids_.resize(256);
  for (int b = 0; b < 256; ++b) {
    std::string ch = unicode::to_utf8(byte_chars[b]);
    auto id = vocab_.find(ch);
    auto end_id = vocab_.find(ch + kWordEnd);
    if (!id || !end_id) {
      throw_input_error("tokenizer_bad_vocab",
                        vocab_json + ": CLIP vocabulary lacks the byte character \"" + ch + "\" or its \"</w>\" form");
    }
    byte_ids_[b] = *id;
    byte_end_ids_[b] = *end_id;
  }
  const auto merge_lines = tokenizers::read_merges_txt(merges_txt);
  merges_.reserve(merge_lines.size());
  for (const auto& [left, right] : merge_lines) {
    auto l = vocab_.find(left), r = vocab_.find(right), m = vocab_.find(left + right);
    if (!l || !r || !m) {
      throw_input_error("tokenizer_bad_merges",
                        merges_txt + ": merge \"" + left + " " + right + "\" uses a token missing from " + vocab_json);
    }
    merges_.add(*l, *r, *m);
  }
  auto start = vocab_.find(kStartToken), end = vocab_.find(kEndToken);
  if (!start || !end) {
    throw_input_error("tokenizer_bad_vocab", vocab_json + ": CLIP vocabulary lacks <|startoftext|> or <|endoftext|>");
  }
  start_id_ = *start;
  end_id_ = *end;
  pad_id_ = end_id_;
  // OpenAI CLIP's word pattern; the start/end tokens are alternatives of the same pattern, so they are only
  // recognised where a word may begin.
  word_pattern_ = std::make_unique<tokenizers::Regex>(
      R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)", true,
      vocab_json);
}

std::unique_ptr<ClipTokenizer> ClipTokenizer::from_folder(const std::string& folder) {
  std::filesystem::path dir(folder);
  auto tokenizer = std::make_unique<ClipTokenizer>((dir / "vocab.json").string(), (dir / "merges.txt").string());
  if (auto pad = configured_pad_token(dir)) {
    auto id = tokenizer->token_to_id(*pad);
    if (!id) throw_input_error("tokenizer_bad_config", folder + ": pad token \"" + *pad + "\" is not in vocab.json");
    tokenizer->set_pad_id(*id);
  }
  return tokenizer;
}

std::string ClipTokenizer::clean_text(const std::string& text) {
  std::string fixed = tokenizers::ftfy_fix_text(text);
  fixed = tokenizers::html_unescape(tokenizers::html_unescape(fixed));
  return unicode::python_lower(tokenizers::collapse_whitespace(fixed));
}

void ClipTokenizer::encode_word(const std::string& word, std::vector<int64_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // One symbol per byte (shown as its byte character); the last one carries "</w>".
  std::vector<int32_t> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    auto b = static_cast<unsigned char>(word[i]);
    symbols[i] = i + 1 == word.size() ? byte_end_ids_[b] : byte_ids_[b];
  }
  merges_.apply(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kWordCacheLimit) cache_.clear();
  cache_.emplace(word, std::move(symbols));
}

void ClipTokenizer::encode_clean(const std::string& clean, std::vector<int64_t>& out) const {
  for (const auto& [begin, end] : word_pattern_->find_all(clean)) {
    std::string word = clean.substr(begin, end - begin);
    if (word == kStartToken) {
      out.push_back(start_id_);
    } else if (word == kEndToken) {
      out.push_back(end_id_);
    } else {
      encode_word(word, out);
    }
  }
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else {
      encode_clean(clean_text(text.substr(segment.begin, segment.end - segment.begin)), ids);
    }
  }
  return ids;
}

std::vector<int64_t> ClipTokenizer::encode_with_special(const std::string& text) const {
  std::vector<int64_t> ids{start_id_};
  auto body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(end_id_);
  return ids;
}

ClipEncoding ClipTokenizer::encode_padded(const std::string& text, int64_t max_length) const {
  if (max_length < 2) throw_input_error("tokenizer_bad_length", "CLIP max_length must be at least 2");
  ClipEncoding result;
  auto body = encode(text);
  size_t room = static_cast<size_t>(max_length - 2);
  result.truncated = body.size() > room;
  if (result.truncated) body.resize(room);
  result.ids.reserve(max_length);
  result.ids.push_back(start_id_);
  result.ids.insert(result.ids.end(), body.begin(), body.end());
  result.ids.push_back(end_id_);
  result.attention_mask.assign(result.ids.size(), 1);
  result.ids.resize(max_length, pad_id_);
  result.attention_mask.resize(max_length, 0);
  return result;
}

std::string ClipTokenizer::token_text(int64_t id) const {
  if (const auto* added = added_.find(id)) return added->content;
  if (id < 0 || id >= static_cast<int64_t>(vocab_.tokens.size())) return {};
  const std::string& token = vocab_.tokens[id];
  if (id == start_id_ || id == end_id_) return token;
  std::string bytes;
  std::string_view view(token);
  bool word_end = view.size() >= 4 && view.substr(view.size() - 4) == kWordEnd;
  if (word_end) view.remove_suffix(4);
  size_t pos = 0;
  while (pos < view.size()) {
    int b = unicode::code_point_to_byte(unicode::next_code_point(view, pos));
    if (b >= 0) bytes += static_cast<char>(b);
  }
  if (word_end) bytes += ' ';
  return bytes;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int64_t id : ids) {
    bool special = id == start_id_ || id == end_id_ || id == pad_id_ || added_.find(id);
    if (special && skip_special) continue;
    bytes += token_text(id);
  }
  std::string text = unicode::sanitize_utf8(bytes);
  size_t first = text.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  size_t last = text.find_last_not_of(' ');
  text = text.substr(first, last - first + 1);
  // transformers' clean_up_tokenization_spaces (on by default for CLIPTokenizer).
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{" .", "."},
                                                                                 {" ?", "?"},
                                                                                 {" !", "!"},
                                                                                 {" ,", ","},
                                                                                 {" ' ", "'"},
                                                                                 {" n't", "n't"},
                                                                                 {" 'm", "'m"},
                                                                                 {" 's", "'s"},
                                                                                 {" 've", "'ve"},
                                                                                 {" 're", "'re"}}) {
    size_t pos = 0;
    while ((pos = text.find(from, pos)) != std::string::npos) {
      text.replace(pos, from.size(), to);
      pos += to.size();
    }
  }
  return text;
}

int64_t ClipTokenizer::vocab_size() const {
  int64_t size = static_cast<int64_t>(vocab_.tokens.size());
  for (const auto& token : added_.tokens()) size = std::max(size, token.id + 1);
  return size;
}

std::optional<int64_t> ClipTokenizer::token_to_id(const std::string& token) const {
  if (const auto* added = added_.find(token)) return added->id;
  if (auto id = vocab_.find(token)) return *id;
  return std::nullopt;
}

std::vector<int64_t> ClipTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<int64_t> ids;
  for (const auto& content : tokens) {
    if (auto existing = token_to_id(content)) {
      if (!added_.find(content)) added_.add({content, *existing, true});
      ids.push_back(*existing);
      continue;
    }
    int64_t id = vocab_size();
    added_.add({content, id, true});
    ids.push_back(id);
  }
  return ids;
}

}  // namespace a2a
