// tokenizer.json (Hugging Face tokenizers): model, normalizers, pre-tokenizers, decoders, added tokens,
// post-processor; then encoding and decoding of a text.
#include "fuzz/exercise.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/tokenizer_writers.h"
#include "tokenizers/hf_tokenizer.h"

namespace a2a::fuzz {

namespace {

// Input: the tokenizer.json, "\n--8<--\n", the text.
void tokenizer_json(const Bytes& input) {
  const auto parts = split_input(input, 2);
  auto tokenizer = HfTokenizer::from_tokenizer_json(scratch_file("tokenizer.json", parts[0]));
  exercise_tokenizer(*tokenizer, parts[1]);
}

// A byte-level BPE (GPT-2 / RoBERTa style) and a SentencePiece-style BPE (Llama / Mistral style).
const char kByteLevel[] = R"({"version": "1.0", "truncation": null, "padding": null,
 "added_tokens": [{"id": 0, "content": "<s>", "special": true}, {"id": 1, "content": "</s>", "special": true}],
 "normalizer": null,
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
 "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 1], "cls": ["<s>", 0], "trim_offsets": true,
                    "add_prefix_space": false},
 "decoder": {"type": "ByteLevel"},
 "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
           "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
           "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "c": 4, "Ġ": 5, "ab": 6, "Ġa": 7, "abc": 8, "t": 9},
           "merges": ["a b", "Ġ a", "ab c"]}})";

const char kSentencePiece[] = R"({"version": "1.0",
 "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
                  {"id": 2, "content": "</s>", "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
 "pre_tokenizer": null,
 "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}], "pair": [],
                    "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
 "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
             {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
 "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
           "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "<0xC3>": 4, "<0xA9>": 5, "▁": 6, "h": 7, "i": 8,
                     "▁h": 9, "▁hi": 10},
           "merges": ["▁ h", "▁h i"]}})";

// A T5-style Unigram model as transformers converts it: Precompiled charsmap, Strip, Replace, Metaspace.
std::string unigram_json() {
  const std::string charsmap = base64_encode(precompiled_charsmap({{"\xEF\xBC\xA1", "A"}, {"\t", " "}}));
  return R"({"version": "1.0",
 "added_tokens": [{"id": 0, "content": "<pad>", "special": true}, {"id": 1, "content": "</s>", "special": true},
                  {"id": 2, "content": "<unk>", "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": ")" +
         charsmap + R"("},
   {"type": "Strip", "strip_left": false, "strip_right": true},
   {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}]},
 "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
 "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [],
                    "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
 "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
 "model": {"type": "Unigram", "unk_id": 2, "byte_fallback": true,
           "vocab": [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["▁", -2.0], ["A", -3.0], ["▁A", -2.5],
                     ["b", -3.0], ["<0xC3>", 0.0], ["<0xA9>", 0.0]]}})";
}

std::vector<std::pair<std::string, Bytes>> tokenizer_json_seeds() {
  return {{"byte_level.txt", join_parts({kByteLevel, "abc ab <s>a</s> caf\xC3\xA9"})},
          {"unigram.txt", join_parts({unigram_json(), "\xEF\xBC\xA1" + std::string("b\t Ab  \xC3\xA9 zz</s>")})},
          {"sentencepiece.txt", join_parts({kSentencePiece, "hi hi <s> A \xC3\xA9 x"})},
          {"deep_normalizer.txt",
           join_parts({R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": )" +
                           std::string(40 * 0, ' ') +
                           R"({"type": "Sequence", "normalizers": [{"type": "Sequence", "normalizers": []}]}})",
                       "x"})},
          {"huge_id.txt", join_parts({R"({"model": {"type": "BPE", "vocab": {"a": 100000000}, "merges": []}})", "a"})}};
}

}  // namespace

A2A_FUZZ_TARGET("tokenizer_json",
                "tokenizer.json (BPE and Unigram models, vocabulary ids, merges, scores, normalizers with a "
                "precompiled charsmap, pre-tokenizers, "
                "decoders, added tokens, post-processors) and encoding/decoding a text with it",
                tokenizer_json, tokenizer_json_seeds);

}  // namespace a2a::fuzz
