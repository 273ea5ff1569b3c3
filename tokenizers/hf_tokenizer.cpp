#include "tokenizers/hf_tokenizer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/error.h"
#include "base/json_parse.h"
#include "tokenizers/added_tokens.h"
#include "tokenizers/base64.h"
#include "tokenizers/bpe_merges.h"
#include "tokenizers/precompiled_charsmap.h"
#include "tokenizers/regex.h"
#include "tokenizers/unicode.h"
#include "tokenizers/unigram_model.h"
#include "tokenizers/vocab_files.h"

namespace a2a {
namespace {

using json = nlohmann::json;
using tokenizers::Regex;

// GPT-2's word pattern, used by the ByteLevel pre-tokenizer when use_regex is set.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr size_t kPieceCacheLimit = 1 << 16;
constexpr size_t kCachedWordBytes = 256;

// Sequence components parse recursively; real tokenizers nest them one or two deep.
constexpr int kMaxComponentNesting = 32;

void check_component_nesting(int depth, const char* component, const std::string& where) {
  if (depth >= kMaxComponentNesting) {
    throw_input_error("tokenizer_bad_json", where + ": " + component + " Sequence nests deeper than " +
                                                std::to_string(kMaxComponentNesting) + " levels");
  }
}

[[noreturn]] void unsupported(const std::string& where, const std::string& what) {
  throw_input_error("tokenizer_unsupported", where + ": unsupported " + what);
}

std::string json_string(const json& j, const char* key, const std::string& where, const std::string& fallback = "") {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  if (!j.at(key).is_string()) throw_input_error("tokenizer_bad_json", where + ": \"" + key + "\" must be a string");
  return j.at(key).get<std::string>();
}

bool json_bool(const json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return j.at(key).get<bool>();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// A {"String": ...} or {"Regex": ...} pattern of tokenizer.json.
class Pattern {
 public:
  Pattern(const json& j, const std::string& where) {
    if (j.contains("String")) {
      literal_ = j.at("String").get<std::string>();
    } else if (j.contains("Regex")) {
      regex_ = std::make_unique<Regex>(j.at("Regex").get<std::string>(), false, where);
    } else {
      throw_input_error("tokenizer_bad_json", where + ": a pattern needs \"String\" or \"Regex\"");
    }
  }
  explicit Pattern(std::unique_ptr<Regex> regex) : regex_(std::move(regex)) {}

  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const {
    if (regex_) return regex_->find_all(text);
    std::vector<std::pair<size_t, size_t>> out;
    if (literal_.empty()) return out;
    size_t pos = 0;
    while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
      out.emplace_back(pos, pos + literal_.size());
      pos += literal_.size();
    }
    return out;
  }

  std::string replace(const std::string& text, const std::string& content) const {
    std::string out;
    size_t last = 0;
    for (const auto& [begin, end] : find_all(text)) {
      out.append(text, last, begin - last);
      out += content;
      last = end;
    }
    out.append(text, last, std::string::npos);
    return out;
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// ---------------------------------------------------------------------------------------------------
// Normalizers

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual void apply(std::string& text) const = 0;
  // Whether it puts a prefix before every piece of text it is given (each run between added tokens).
  virtual bool prefixes_each_piece() const { return false; }
};

struct PrependNormalizer : Normalizer {
  std::string prefix;
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix);
  }
  bool prefixes_each_piece() const override { return true; }
};

struct ReplaceNormalizer : Normalizer {
  std::unique_ptr<Pattern> pattern;
  std::string content;
  void apply(std::string& text) const override { text = pattern->replace(text, content); }
};

struct NfcNormalizer : Normalizer {
  void apply(std::string& text) const override { text = unicode::nfc(text); }
};

struct LowercaseNormalizer : Normalizer {
  void apply(std::string& text) const override { text = unicode::python_lower(text); }
};

struct StripNormalizer : Normalizer {
  bool left = true, right = true;
  void apply(std::string& text) const override {
    auto cps = unicode::to_code_points(text);
    size_t begin = 0, end = cps.size();
    if (left)
      while (begin < end && unicode::is_python_space(cps[begin])) ++begin;
    if (right)
      while (end > begin && unicode::is_python_space(cps[end - 1])) --end;
    text = unicode::to_utf8(std::vector<uint32_t>(cps.begin() + begin, cps.begin() + end));
  }
};

// SentencePiece's compiled rules (T5's nmt_nfkc), applied with SentencePiece's longest-prefix matching. Hugging
// Face's implementation looks rules up per grapheme cluster first; the two agree wherever no rule spans a
// grapheme boundary, which holds for NFKC-style tables.
struct PrecompiledNormalizer : Normalizer {
  std::unique_ptr<tokenizers::PrecompiledCharsMap> charsmap;  // null: the identity
  void apply(std::string& text) const override {
    if (charsmap) text = charsmap->normalize(text);
  }
};

struct SequenceNormalizer : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> steps;
  void apply(std::string& text) const override {
    for (const auto& step : steps) step->apply(text);
  }
  bool prefixes_each_piece() const override {
    return std::any_of(steps.begin(), steps.end(), [](const auto& step) { return step->prefixes_each_piece(); });
  }
};

std::unique_ptr<Normalizer> parse_normalizer(const json& j, const std::string& where, int depth = 0) {
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type", where);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    check_component_nesting(depth, "normalizer", where);
    for (const auto& step : j.at("normalizers")) seq->steps.push_back(parse_normalizer(step, where, depth + 1));
    return seq;
  }
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNormalizer>();
    n->prefix = json_string(j, "prepend", where);
    return n;
  }
  if (type == "Replace") {
    auto n = std::make_unique<ReplaceNormalizer>();
    n->pattern = std::make_unique<Pattern>(j.at("pattern"), where);
    n->content = json_string(j, "content", where);
    return n;
  }
  if (type == "Precompiled") {
    auto n = std::make_unique<PrecompiledNormalizer>();
    const std::string encoded = json_string(j, "precompiled_charsmap", where);
    if (!encoded.empty()) {
      n->charsmap = std::make_unique<tokenizers::PrecompiledCharsMap>(
          tokenizers::decode_base64(encoded, where, "precompiled_charsmap"), where);
    }
    return n;
  }
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    auto n = std::make_unique<StripNormalizer>();
    n->left = json_bool(j, "strip_left", true);
    n->right = json_bool(j, "strip_right", true);
    return n;
  }
  unsupported(where, "normalizer \"" + type + "\"");
}

// ---------------------------------------------------------------------------------------------------
// Pre-tokenizers: split the normalised text into words that the model encodes separately.

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  unsupported(where, "split behavior \"" + name + "\"");
}

// Hugging Face's NormalizedString::split: matches and the gaps between them, combined by `behavior`.
void split_word(const std::string& word, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                bool invert, std::vector<std::string>& out) {
  struct Part {
    size_t begin, end;
    bool match;
  };
  std::vector<Part> parts;
  size_t last = 0;
  for (const auto& [begin, end] : matches) {
    if (begin > last) parts.push_back({last, begin, invert});
    parts.push_back({begin, end, !invert});
    last = end;
  }
  if (last < word.size()) parts.push_back({last, word.size(), invert});

  std::vector<Part> merged;
  switch (behavior) {
    case SplitBehavior::Isolated: merged = parts; break;
    case SplitBehavior::Removed:
      for (const auto& p : parts)
        if (!p.match) merged.push_back(p);
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const auto& p : parts) {
        if (p.match && !previous_match && !merged.empty()) {
          merged.back().end = p.end;
        } else {
          merged.push_back(p);
        }
        previous_match = p.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !previous_match && !merged.empty()) {
          merged.back().begin = it->begin;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (const auto& p : parts) {
        if (p.match && previous_match && !merged.empty()) {
          merged.back().end = p.end;
        } else {
          merged.push_back(p);
        }
        previous_match = p.match;
      }
      break;
    }
  }
  for (const auto& p : merged) {
    if (p.end > p.begin) out.push_back(word.substr(p.begin, p.end - p.begin));
  }
}

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // `text_start`: the first word begins the input text (not after an added token).
  virtual void apply(std::vector<std::string>& words, bool text_start) const = 0;
};

struct SplitPreTokenizer : PreTokenizer {
  std::unique_ptr<Pattern> pattern;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  void apply(std::vector<std::string>& words, bool) const override {
    std::vector<std::string> out;
    for (const auto& word : words) split_word(word, pattern->find_all(word), behavior, invert, out);
    words.swap(out);
  }
};

struct ByteLevelPreTokenizer : PreTokenizer {
  bool add_prefix_space = false;
  std::unique_ptr<Regex> regex;  // null when use_regex is false
  void apply(std::vector<std::string>& words, bool) const override {
    std::vector<std::string> split;
    for (auto word : words) {
      if (add_prefix_space && (word.empty() || word[0] != ' ')) word.insert(0, " ");
      if (regex) {
        split_word(word, regex->find_all(word), SplitBehavior::Isolated, false, split);
      } else {
        split.push_back(word);
      }
    }
    const auto& table = unicode::byte_to_code_point();
    words.clear();
    for (const auto& word : split) {
      std::string mapped;
      mapped.reserve(word.size() * 2);
      for (unsigned char b : word) unicode::append_utf8(mapped, table[b]);
      words.push_back(std::move(mapped));
    }
  }
};

enum class PrependScheme { Always, First, Never };

struct MetaspacePreTokenizer : PreTokenizer {
  std::string replacement = "\xE2\x96\x81";
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
  void apply(std::vector<std::string>& words, bool text_start) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < words.size(); ++i) {
      std::string word = words[i];
      replace_all(word, " ", replacement);
      bool prepend = scheme == PrependScheme::Always || (scheme == PrependScheme::First && i == 0 && text_start);
      if (prepend && word.compare(0, replacement.size(), replacement) != 0) word.insert(0, replacement);
      if (split) {
        std::vector<std::pair<size_t, size_t>> matches;
        size_t pos = 0;
        while ((pos = word.find(replacement, pos)) != std::string::npos) {
          matches.emplace_back(pos, pos + replacement.size());
          pos += replacement.size();
        }
        split_word(word, matches, SplitBehavior::MergedWithNext, false, out);
      } else {
        out.push_back(word);
      }
    }
    words.swap(out);
  }
};

struct SequencePreTokenizer : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  void apply(std::vector<std::string>& words, bool text_start) const override {
    for (const auto& step : steps) step->apply(words, text_start);
  }
};

PrependScheme parse_prepend_scheme(const json& j, const std::string& where) {
  if (j.contains("prepend_scheme") && !j.at("prepend_scheme").is_null()) {
    std::string scheme = j.at("prepend_scheme").get<std::string>();
    if (scheme == "always") return PrependScheme::Always;
    if (scheme == "first") return PrependScheme::First;
    if (scheme == "never") return PrependScheme::Never;
    unsupported(where, "Metaspace prepend_scheme \"" + scheme + "\"");
  }
  return json_bool(j, "add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& j, const std::string& where, int depth = 0) {
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type", where);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePreTokenizer>();
    check_component_nesting(depth, "pre_tokenizer", where);
    for (const auto& step : j.at("pretokenizers")) seq->steps.push_back(parse_pre_tokenizer(step, where, depth + 1));
    return seq;
  }
  if (type == "Split") {
    auto p = std::make_unique<SplitPreTokenizer>();
    p->pattern = std::make_unique<Pattern>(j.at("pattern"), where);
    p->behavior = parse_behavior(json_string(j, "behavior", where, "Isolated"), where);
    p->invert = json_bool(j, "invert", false);
    return p;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPreTokenizer>();
    p->add_prefix_space = json_bool(j, "add_prefix_space", true);
    if (json_bool(j, "use_regex", true)) p->regex = std::make_unique<Regex>(kGpt2Pattern, false, where);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePreTokenizer>();
    p->replacement = json_string(j, "replacement", where, p->replacement);
    p->scheme = parse_prepend_scheme(j, where);
    p->split = json_bool(j, "split", true);
    return p;
  }
  if (type == "Digits") {
    auto p = std::make_unique<SplitPreTokenizer>();
    bool individual = json_bool(j, "individual_digits", false);
    p->pattern =
        std::make_unique<Pattern>(std::make_unique<Regex>(individual ? R"(\p{N})" : R"(\p{N}+)", false, where));
    return p;
  }
  if (type == "WhitespaceSplit") {
    auto p = std::make_unique<SplitPreTokenizer>();
    p->pattern = std::make_unique<Pattern>(std::make_unique<Regex>(R"(\s+)", false, where));
    p->behavior = SplitBehavior::Removed;
    return p;
  }
  if (type == "Whitespace") {
    auto p = std::make_unique<SplitPreTokenizer>();
    p->pattern = std::make_unique<Pattern>(std::make_unique<Regex>(R"(\w+|[^\w\s]+)", false, where));
    p->behavior = SplitBehavior::Removed;
    p->invert = true;
    return p;
  }
  unsupported(where, "pre-tokenizer \"" + type + "\"");
}

// ---------------------------------------------------------------------------------------------------
// Decoders: turn the token strings back into text.

struct Decoder {
  virtual ~Decoder() = default;
  // `text_start`: the first token starts a whole text. False when streaming one token after others: then
  // nothing is stripped and bytes are passed on raw, since a character may span several tokens.
  virtual void apply(std::vector<std::string>& tokens, bool text_start) const = 0;
};

struct ByteLevelDecoder : Decoder {
  void apply(std::vector<std::string>& tokens, bool text_start) const override {
    std::string bytes;
    for (const auto& token : tokens) {
      std::string mapped;
      bool all_bytes = true;
      size_t pos = 0;
      while (pos < token.size()) {
        int b = unicode::code_point_to_byte(unicode::next_code_point(token, pos));
        if (b < 0) {
          all_bytes = false;
          break;
        }
        mapped += static_cast<char>(b);
      }
      bytes += all_bytes ? mapped : token;
    }
    tokens.assign(1, text_start ? unicode::sanitize_utf8(bytes) : bytes);
  }
};

struct ReplaceDecoder : Decoder {
  std::unique_ptr<Pattern> pattern;
  std::string content;
  void apply(std::vector<std::string>& tokens, bool) const override {
    for (auto& token : tokens) token = pattern->replace(token, content);
  }
};

int byte_token_value(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    char c = token[i];
    int digit = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

struct ByteFallbackDecoder : Decoder {
  void apply(std::vector<std::string>& tokens, bool text_start) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      std::string clean = unicode::sanitize_utf8(pending);
      if (clean == pending || !text_start) {
        out.push_back(pending);
      } else {
        // Hugging Face replaces every byte of an invalid run.
        for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (const auto& token : tokens) {
      int b = byte_token_value(token);
      if (b >= 0) {
        pending += static_cast<char>(b);
      } else {
        flush();
        out.push_back(token);
      }
    }
    flush();
    tokens.swap(out);
  }
};

struct FuseDecoder : Decoder {
  void apply(std::vector<std::string>& tokens, bool) const override {
    std::string joined;
    for (const auto& token : tokens) joined += token;
    tokens.assign(1, joined);
  }
};

struct StripDecoder : Decoder {
  std::string content = " ";
  size_t start = 0, stop = 0;
  void apply(std::vector<std::string>& tokens, bool text_start) const override {
    for (auto& token : tokens) {
      for (size_t i = 0; text_start && i < start && token.compare(0, content.size(), content) == 0; ++i) {
        token.erase(0, content.size());
      }
      for (size_t i = 0; i < stop && token.size() >= content.size() &&
                         token.compare(token.size() - content.size(), content.size(), content) == 0;
           ++i) {
        token.erase(token.size() - content.size());
      }
    }
  }
};

struct MetaspaceDecoder : Decoder {
  std::string replacement = "\xE2\x96\x81";
  PrependScheme scheme = PrependScheme::Always;
  void apply(std::vector<std::string>& tokens, bool text_start) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      // As in Hugging Face tokenizers, the first token loses every replacement character, not only one.
      bool drop = i == 0 && text_start && scheme != PrependScheme::Never;
      replace_all(tokens[i], replacement, drop ? "" : " ");
    }
  }
};

struct BpeSuffixDecoder : Decoder {
  std::string suffix = "</w>";
  void apply(std::vector<std::string>& tokens, bool) const override {
    for (size_t i = 0; i < tokens.size(); ++i) replace_all(tokens[i], suffix, i + 1 == tokens.size() ? "" : " ");
  }
};

struct SequenceDecoder : Decoder {
  std::vector<std::unique_ptr<Decoder>> steps;
  void apply(std::vector<std::string>& tokens, bool text_start) const override {
    for (const auto& step : steps) step->apply(tokens, text_start);
  }
};

std::unique_ptr<Decoder> parse_decoder(const json& j, const std::string& where, int depth = 0) {
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type", where);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDecoder>();
    check_component_nesting(depth, "decoder", where);
    for (const auto& step : j.at("decoders")) seq->steps.push_back(parse_decoder(step, where, depth + 1));
    return seq;
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDecoder>();
    d->pattern = std::make_unique<Pattern>(j.at("pattern"), where);
    d->content = json_string(j, "content", where);
    return d;
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDecoder>();
    d->content = json_string(j, "content", where, " ");
    d->start = j.value("start", 0);
    d->stop = j.value("stop", 0);
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDecoder>();
    d->replacement = json_string(j, "replacement", where, d->replacement);
    d->scheme = parse_prepend_scheme(j, where);
    return d;
  }
  if (type == "BPEDecoder") {
    auto d = std::make_unique<BpeSuffixDecoder>();
    d->suffix = json_string(j, "suffix", where, d->suffix);
    return d;
  }
  unsupported(where, "decoder \"" + type + "\"");
}

// ---------------------------------------------------------------------------------------------------
// Post-processor: the special tokens around one sequence.

struct TemplatePiece {
  bool sequence = false;     // the encoded text
  std::vector<int64_t> ids;  // special token ids otherwise
};

std::vector<TemplatePiece> parse_post_processor(const json& j, const std::string& where) {
  std::vector<TemplatePiece> pieces;
  if (j.is_null()) return pieces;
  const std::string type = json_string(j, "type", where);
  auto special = [&](const json& pair) {
    TemplatePiece piece;
    piece.ids.push_back(tokenizers::json_token_id(pair.at(1), pair.at(0).dump(), where));
    return piece;
  };
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    pieces.push_back(special(j.at("cls")));
    pieces.push_back({true, {}});
    pieces.push_back(special(j.at("sep")));
    return pieces;
  }
  if (type == "TemplateProcessing") {
    for (const auto& item : j.at("single")) {
      if (item.contains("Sequence")) {
        pieces.push_back({true, {}});
      } else if (item.contains("SpecialToken")) {
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        if (!j.at("special_tokens").contains(name)) {
          throw_input_error("tokenizer_bad_json", where + ": template token \"" + name + "\" has no ids");
        }
        std::vector<int64_t> ids;
        for (const auto& id : j.at("special_tokens").at(name).at("ids"))
          ids.push_back(tokenizers::json_token_id(id, name, where));
        pieces.push_back({false, ids});
      }
    }
    return pieces;
  }
  if (type == "ByteLevel") return pieces;
  if (type == "Sequence") {
    for (const auto& step : j.at("processors")) {
      auto inner = parse_post_processor(step, where);
      if (!inner.empty()) pieces = std::move(inner);
    }
    return pieces;
  }
  unsupported(where, "post-processor \"" + type + "\"");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

struct HfTokenizer::Impl {
  std::string where;
  tokenizers::Vocabulary vocab;
  bpe::MergeTable merges;
  std::optional<int32_t> unk_id;
  std::string continuing_subword_prefix, end_of_word_suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::vector<int32_t> byte_token_ids;                // "<0xXX>" ids for byte fallback; -1 where absent
  std::unique_ptr<tokenizers::UnigramModel> unigram;  // a Unigram model; BPE otherwise

  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  std::vector<TemplatePiece> post_processor;
  tokenizers::AddedTokens added;
  std::optional<int64_t> bos, eos, pad;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  void finish_model() {
    byte_token_ids.assign(256, -1);
    if (!byte_fallback) return;
    char name[8];
    for (int b = 0; b < 256; ++b) {
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      if (auto id = vocab.find(name)) byte_token_ids[b] = *id;
    }
  }

  void add_merge(const std::string& left, const std::string& right) {
    std::string merged = left;
    merged += right.compare(0, continuing_subword_prefix.size(), continuing_subword_prefix) == 0
                  ? right.substr(continuing_subword_prefix.size())
                  : right;
    auto l = vocab.find(left), r = vocab.find(right), m = vocab.find(merged);
    if (!l || !r || !m) {
      throw_input_error("tokenizer_bad_merges",
                        where + ": merge \"" + left + " " + right + "\" uses a token missing from the vocabulary");
    }
    merges.add(*l, *r, *m);
  }

  // Unigram::encode then tokenize of Hugging Face: an unknown run becomes its bytes' "<0xXX>" tokens under
  // byte_fallback when they all exist, else the unk token.
  void encode_unigram_word(const std::string& word, std::vector<int64_t>& out) const {
    for (const auto& token : unigram->encode(word)) {
      auto byte_id = [&](size_t i) { return byte_token_ids[static_cast<unsigned char>(word[i])]; };
      bool bytes = byte_fallback && token.id == unigram->unk_id();
      for (size_t i = token.begin; bytes && i < token.end; ++i) bytes = byte_id(i) >= 0;
      if (!bytes) {
        out.push_back(token.id);
        continue;
      }
      for (size_t i = token.begin; i < token.end; ++i) out.push_back(byte_id(i));
    }
  }

  void encode_word(const std::string& word, std::vector<int64_t>& out) const {
    if (unigram) {
      encode_unigram_word(word, out);
      return;
    }
    if (ignore_merges) {
      if (auto id = vocab.find(word)) {
        out.push_back(*id);
        return;
      }
    }
    const bool cacheable = word.size() <= kCachedWordBytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = cache.find(word);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> symbols;
    symbols.reserve(word.size());
    bool last_was_unk = false;
    size_t pos = 0;
    std::string piece;
    while (pos < word.size()) {
      size_t start = pos;
      unicode::next_code_point(word, pos);
      piece.clear();
      if (start > 0) piece += continuing_subword_prefix;
      piece.append(word, start, pos - start);
      if (pos == word.size()) piece += end_of_word_suffix;
      if (auto id = vocab.find(piece)) {
        symbols.push_back(*id);
        last_was_unk = false;
        continue;
      }
      if (byte_fallback) {
        bool all = true;
        for (size_t i = start; i < pos; ++i) all = all && byte_token_ids[static_cast<unsigned char>(word[i])] >= 0;
        if (all) {
          for (size_t i = start; i < pos; ++i) symbols.push_back(byte_token_ids[static_cast<unsigned char>(word[i])]);
          last_was_unk = false;
          continue;
        }
      }
      if (unk_id) {
        if (!(fuse_unk && last_was_unk)) symbols.push_back(*unk_id);
        last_was_unk = true;
      }
    }
    merges.apply(symbols);
    out.insert(out.end(), symbols.begin(), symbols.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (cache.size() >= kPieceCacheLimit) cache.clear();
      cache.emplace(word, std::move(symbols));
    }
  }

  void encode_plain(const std::string& text, bool text_start, std::vector<int64_t>& out) const {
    std::string normalized = text;
    if (normalizer) normalizer->apply(normalized);
    if (normalized.empty()) return;
    std::vector<std::string> words{normalized};
    if (pre_tokenizer) pre_tokenizer->apply(words, text_start);
    for (const auto& word : words) {
      if (!word.empty()) encode_word(word, out);
    }
  }

  std::optional<std::string> token_of(int64_t id) const {
    if (const auto* token = added.find(id)) return token->content;
    if (id >= 0 && id < static_cast<int64_t>(vocab.tokens.size()) && !vocab.tokens[id].empty()) {
      return vocab.tokens[id];
    }
    return std::nullopt;
  }

  std::string decode_tokens(std::vector<std::string> tokens, bool text_start) const {
    if (decoder) {
      decoder->apply(tokens, text_start);
      std::string out;
      for (const auto& token : tokens) out += token;
      return out;
    }
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }

  std::optional<int64_t> named_id(const std::string& name) const {
    if (const auto* token = added.find(name)) return token->id;
    if (auto id = vocab.find(name)) return *id;
    return std::nullopt;
  }
};

HfTokenizer::HfTokenizer() : impl_(std::make_unique<Impl>()) {}
HfTokenizer::~HfTokenizer() = default;

namespace {

std::optional<std::string> special_token_name(const json& config, const char* key) {
  if (!config.contains(key) || config.at(key).is_null()) return std::nullopt;
  const auto& value = config.at(key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value.at("content").get<std::string>();
  return std::nullopt;
}

}  // namespace

namespace {

void read_bpe_model(const json& model, HfTokenizer::Impl& impl, int64_t entries) {
  const std::string& path = impl.where;
  if (!model.at("vocab").is_object()) throw_input_error("tokenizer_bad_json", path + ": model.vocab is not an object");
  impl.vocab.ids.reserve(model.at("vocab").size());
  for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
    impl.vocab.insert(it.key(), tokenizers::json_token_id(it.value(), it.key(), path), entries, path);
  }
  impl.continuing_subword_prefix = json_string(model, "continuing_subword_prefix", path);
  impl.end_of_word_suffix = json_string(model, "end_of_word_suffix", path);
  impl.fuse_unk = json_bool(model, "fuse_unk", false);
  impl.byte_fallback = json_bool(model, "byte_fallback", false);
  impl.ignore_merges = json_bool(model, "ignore_merges", false);
  if (auto unk = json_string(model, "unk_token", path); !unk.empty()) impl.unk_id = impl.vocab.find(unk);
  const json merges = model.value("merges", json::array());
  impl.merges.reserve(merges.size());
  for (const auto& merge : merges) {
    if (merge.is_string()) {
      const std::string line = merge.get<std::string>();
      size_t space = line.find(' ');
      if (space == std::string::npos) throw_input_error("tokenizer_bad_merges", path + ": merge \"" + line + "\"");
      impl.add_merge(line.substr(0, space), line.substr(space + 1));
    } else {
      impl.add_merge(merge.at(0).get<std::string>(), merge.at(1).get<std::string>());
    }
  }
}

// model.vocab of a Unigram model is [[piece, score], ...] in id order. Scores are kept as the float32 values
// SentencePiece trained (Hugging Face sums them in double, which can only part ways on exact near-ties).
void read_unigram_model(const json& model, HfTokenizer::Impl& impl, int64_t entries) {
  const std::string& path = impl.where;
  const json& vocab = model.at("vocab");
  if (!vocab.is_array()) throw_input_error("tokenizer_bad_json", path + ": a Unigram model.vocab is not an array");
  std::vector<tokenizers::UnigramModel::Piece> pieces;
  pieces.reserve(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    const json& entry = vocab[id];
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number()) {
      throw_input_error("tokenizer_bad_json",
                        path + ": Unigram vocabulary entry " + std::to_string(id) + " is not [piece, score]");
    }
    const std::string piece = entry[0].get<std::string>();
    const double score = entry[1].get<double>();
    if (!(std::fabs(score) <= FLT_MAX)) {
      throw_input_error("tokenizer_bad_vocab", path + ": Unigram piece " + std::to_string(id) + " has the score " +
                                                   entry[1].dump() + ", not a finite float");
    }
    impl.vocab.insert(piece, static_cast<int64_t>(id), entries, path);
    pieces.push_back({piece, static_cast<float>(score), tokenizers::UnigramModel::Kind::Scored});
  }
  if (!model.contains("unk_id") || model.at("unk_id").is_null()) {
    throw_input_error("tokenizer_bad_vocab", path + ": the Unigram model has no unk_id");
  }
  const int64_t unk_id = tokenizers::json_token_id(model.at("unk_id"), "unk_id", path);
  impl.byte_fallback = json_bool(model, "byte_fallback", false);
  impl.unigram = std::make_unique<tokenizers::UnigramModel>(std::move(pieces), unk_id, path);
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::from_tokenizer_json(const std::string& path) {
  json root;
  try {
    root = parse_json_bounded(tokenizers::read_file(path), path);
  } catch (const json::exception& e) {
    throw_input_error("tokenizer_bad_json", path + ": not valid JSON: " + e.what());
  }
  std::unique_ptr<HfTokenizer> tokenizer(new HfTokenizer());
  Impl& impl = *tokenizer->impl_;
  impl.where = path;
  try {
    if (!root.contains("model") || !root.at("model").is_object()) {
      throw_input_error("tokenizer_bad_json", path + ": no \"model\" object");
    }
    const json& model = root.at("model");
    const std::string type = json_string(model, "type", path, "BPE");
    if (type != "BPE" && type != "Unigram") unsupported(path, "model type \"" + type + "\" (only BPE and Unigram)");
    const json& added_tokens = root.value("added_tokens", json::array());
    const size_t added_count = added_tokens.is_array() ? added_tokens.size() : 0;
    const int64_t entries = static_cast<int64_t>(model.at("vocab").size() + added_count);
    if (type == "Unigram")
      read_unigram_model(model, impl, entries);
    else
      read_bpe_model(model, impl, entries);
    impl.finish_model();

    for (const auto& token : added_tokens) {
      tokenizers::AddedToken added;
      added.content = token.at("content").get<std::string>();
      added.id = tokenizers::json_token_id(token.at("id"), added.content, path);
      tokenizers::check_token_id(added.id, entries, added.content, path);
      added.special = json_bool(token, "special", false);
      added.lstrip = json_bool(token, "lstrip", false);
      added.rstrip = json_bool(token, "rstrip", false);
      added.single_word = json_bool(token, "single_word", false);
      impl.added.add(added);
    }
    impl.normalizer = parse_normalizer(root.value("normalizer", json()), path);
    impl.pre_tokenizer = parse_pre_tokenizer(root.value("pre_tokenizer", json()), path);
    impl.decoder = parse_decoder(root.value("decoder", json()), path);
    impl.post_processor = parse_post_processor(root.value("post_processor", json()), path);
    if (root.contains("padding") && root.at("padding").is_object() && root.at("padding").contains("pad_id")) {
      impl.pad = tokenizers::json_token_id(root.at("padding").at("pad_id"), "pad_id", path);
    }
  } catch (const json::exception& e) {
    throw_input_error("tokenizer_bad_json", path + ": unexpected structure: " + e.what());
  }

  // BOS/EOS: the post-processor's tokens around the sequence, then tokenizer_config.json's names.
  bool before = true;
  for (const auto& piece : impl.post_processor) {
    if (piece.sequence) {
      before = false;
    } else if (!piece.ids.empty()) {
      (before ? impl.bos : impl.eos) = piece.ids.front();
    }
  }
  auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    json config;
    try {
      config = parse_json_bounded(tokenizers::read_file(config_path.string()), config_path.string());
    } catch (const json::exception& e) {
      throw_input_error("tokenizer_bad_json", config_path.string() + ": not valid JSON: " + e.what());
    }
    if (auto name = special_token_name(config, "bos_token")) impl.bos = impl.named_id(*name);
    if (auto name = special_token_name(config, "eos_token")) impl.eos = impl.named_id(*name);
    if (auto name = special_token_name(config, "pad_token")) impl.pad = impl.named_id(*name);
  }
  return tokenizer;
}

std::unique_ptr<HfTokenizer> HfTokenizer::from_gpt2_files(const std::string& vocab_json,
                                                          const std::string& merges_txt) {
  std::unique_ptr<HfTokenizer> tokenizer(new HfTokenizer());
  Impl& impl = *tokenizer->impl_;
  impl.where = vocab_json;
  impl.vocab = tokenizers::read_vocab_json(vocab_json);
  impl.where = merges_txt;
  const auto merge_lines = tokenizers::read_merges_txt(merges_txt);
  impl.merges.reserve(merge_lines.size());
  for (const auto& [left, right] : merge_lines) impl.add_merge(left, right);
  impl.finish_model();
  auto pre = std::make_unique<ByteLevelPreTokenizer>();
  pre->regex = std::make_unique<Regex>(kGpt2Pattern, false, vocab_json);
  impl.pre_tokenizer = std::move(pre);
  impl.decoder = std::make_unique<ByteLevelDecoder>();
  const std::string end_of_text = "<|endoftext|>";
  if (auto id = impl.vocab.find(end_of_text)) {
    impl.added.add({end_of_text, *id, true});
    impl.bos = impl.eos = *id;
  }
  return tokenizer;
}

std::vector<int64_t> HfTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& segment : impl_->added.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else if (segment.end > segment.begin) {
      impl_->encode_plain(text.substr(segment.begin, segment.end - segment.begin), segment.begin == 0, ids);
    }
  }
  return ids;
}

std::vector<int64_t> HfTokenizer::encode_with_special(const std::string& text) const {
  if (impl_->post_processor.empty()) return encode(text);
  std::vector<int64_t> ids;
  for (const auto& piece : impl_->post_processor) {
    if (piece.sequence) {
      auto body = encode(text);
      ids.insert(ids.end(), body.begin(), body.end());
    } else {
      ids.insert(ids.end(), piece.ids.begin(), piece.ids.end());
    }
  }
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  if (impl_->normalizer && impl_->normalizer->prefixes_each_piece()) return decode_by_piece(ids, skip_special);
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    const auto* added = impl_->added.find(id);
    if (skip_special && added && added->special) continue;
    if (auto token = impl_->token_of(id)) tokens.push_back(*token);
  }
  return impl_->decode_tokens(std::move(tokens), true);
}

// A normalizer that prefixes every piece between added tokens (SentencePiece-style Prepend("▁"))
// encodes "<s> </s>" as <s> "▁▁" </s>: each piece is decoded on its own, so the decoder removes each
// piece's prefix and the text comes back with the single spaces it had.
std::string HfTokenizer::decode_by_piece(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  std::vector<std::string> piece;
  auto flush = [&] {
    if (!piece.empty()) out += impl_->decode_tokens(std::move(piece), true);
    piece.clear();
  };
  for (int64_t id : ids) {
    if (const auto* added = impl_->added.find(id)) {
      flush();
      if (!(skip_special && added->special)) out += added->content;
    } else if (auto token = impl_->token_of(id)) {
      piece.push_back(*token);
    }
  }
  flush();
  return out;
}

std::string HfTokenizer::token_text(int64_t id) const {
  auto token = impl_->token_of(id);
  if (!token) return {};
  return impl_->decode_tokens({*token}, false);
}

int64_t HfTokenizer::vocab_size() const {
  int64_t size = static_cast<int64_t>(impl_->vocab.tokens.size());
  for (const auto& token : impl_->added.tokens()) size = std::max(size, token.id + 1);
  return size;
}

std::optional<int64_t> HfTokenizer::token_to_id(const std::string& token) const { return impl_->named_id(token); }
std::optional<std::string> HfTokenizer::id_to_token(int64_t id) const { return impl_->token_of(id); }
std::optional<int64_t> HfTokenizer::bos_id() const { return impl_->bos; }
std::optional<int64_t> HfTokenizer::eos_id() const { return impl_->eos; }
std::optional<int64_t> HfTokenizer::pad_id() const { return impl_->pad; }

std::vector<int64_t> HfTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<int64_t> ids;
  for (const auto& content : tokens) {
    if (const auto* added = impl_->added.find(content)) {
      ids.push_back(added->id);
      continue;
    }
    int64_t id = vocab_size();
    impl_->added.add({content, id, true});
    ids.push_back(id);
  }
  return ids;
}

}  // namespace a2a
