// SentencePiece's tokenizer.model (our protobuf reader, the precompiled charsmap's double-array trie), unigram and
// BPE, then a text through it.
#include "fuzz/exercise.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/tokenizer_writers.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace a2a::fuzz {

namespace {

// Input: the tokenizer.model, "\n--8<--\n", the text.
void sentencepiece_model(const Bytes& input) {
  const auto parts = split_input(input, 2);
  SentencePieceTokenizer tokenizer(scratch_file("tokenizer.model", parts[0]));
  exercise_tokenizer(tokenizer, parts[1]);
}

std::vector<std::pair<std::string, Bytes>> sentencepiece_model_seeds() {
  const std::string space = "\xE2\x96\x81";
  const std::vector<PieceSpec> pieces{{"<unk>", 0, 2},       {"<s>", 0, 3},     {"</s>", 0, 3},  {space, -1, 1},
                                      {space + "he", -2, 1}, {"llo", -2.5f, 1}, {"h", -3, 1},    {"e", -3, 1},
                                      {"l", -3, 1},          {"o", -3, 1},      {"[IMG]", 0, 4}, {"<0xC3>", 0, 6},
                                      {"<0xA9>", 0, 6}};
  // nmt_nfkc-like rules: a ligature, a full-width letter, a tab and a control character.
  NormalizerSpec nfkc;
  nfkc.name = "nmt_nfkc";
  const std::string wide_h = "\xEF\xBC\xA8";  // U+FF28, full-width H
  nfkc.precompiled_charsmap =
      precompiled_charsmap({{"\xEF\xAC\x81", "fi"}, {wide_h, "H"}, {wide_h + "e", "he"}, {"\t", " "}, {"\x01", ""}});
  return {{"unigram.txt", join_parts({sentencepiece_model(pieces, 1, true), "hello  hello [IMG] caf\xC3\xA9"})},
          {"unigram_charsmap.txt", join_parts({sentencepiece_model(pieces, TrainerSpec{}, nfkc),
                                               "\t" + wide_h + "ello\x01 \xEF\xAC\x81 [IMG]\xFF\xC3 zz"})},
          {"bpe.txt", join_parts({sentencepiece_model(pieces, 2, false), " he llo\n"})},
          {"truncated.txt", join_parts({sentencepiece_model(pieces, 1, true).substr(0, 40), "x"})}};
}

}  // namespace

A2A_FUZZ_TARGET("sentencepiece_model",
                "SentencePiece tokenizer.model (protobuf wire format: pieces, types, scores, "
                "trainer and normalizer specs, precompiled charsmap), unigram and BPE encoding and decoding of a text",
                sentencepiece_model, sentencepiece_model_seeds);

}  // namespace a2a::fuzz
