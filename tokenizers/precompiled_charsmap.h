#pragma once
// SentencePiece's compiled normalization rules (normalizer_spec.precompiled_charsmap; base64 in the "Precompiled"
// normalizer of tokenizer.json): a little-endian uint32 trie size, a Darts-clone double-array trie over UTF-8
// input prefixes whose values are offsets into the rest of the blob, the NUL-terminated replacement strings.
// nmt_nfkc (T5, mT5, ALBERT, XLM-R) is NFKC plus SentencePiece's rules for controls and odd spaces.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace a2a::tokenizers {

class PrecompiledCharsMap {
 public:
  // Throws the input error "tokenizer_bad_model" naming `where` when the blob is too short, the trie size does not
  // fit it, or a rule reachable in the trie points outside the array or the replacement strings.
  PrecompiledCharsMap(std::string_view blob, const std::string& where);

  // Normalizer::NormalizePrefix of SentencePiece: the replacement of the longest rule matching a prefix of
  // `input` and the bytes it consumes; without a rule, normalize_one_character. `input` must not be empty.
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
  // Every prefix of `text` replaced in turn (no whitespace handling).
  std::string normalize(std::string_view text) const;

 private:
  // Length of the longest rule that is a prefix of `input` (0: none); its replacement's offset in `value`.
  size_t longest_rule(std::string_view input, uint32_t& value) const;
  void check_rules(const std::string& where) const;

  std::vector<uint32_t> units_;
  std::string replacements_;
};

// One character copied: {the character, its length}, or {U+FFFD, 1} for a byte that starts no valid UTF-8
// sequence (overlong forms and surrogates included), as SentencePiece's IsValidDecodeUTF8 decides.
std::pair<std::string_view, size_t> normalize_one_character(std::string_view input);

// Length of the valid UTF-8 character at the start of `text`, 0 when it is not one.
size_t valid_utf8_length(std::string_view text);

}  // namespace a2a::tokenizers
