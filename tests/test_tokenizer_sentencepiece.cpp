// SentencePiece model parsing and encoding on small models written here in the protobuf wire format, so
// that unigram, user-defined pieces and whitespace normalisation are covered next to the Llama-2 vectors.
#include <cstring>

#include "base/error.h"
#include "fuzz/tokenizer_writers.h"
#include "test_support.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace {

using a2a::fuzz::PieceSpec;

std::string write_model(const std::vector<PieceSpec>& pieces, int model_type, bool remove_extra_whitespaces) {
  const std::string path = a2a::test::scratch_dir() + "/spm_" + std::to_string(model_type) + ".model";
  std::ofstream(path, std::ios::binary) << a2a::fuzz::sentencepiece_model(pieces, model_type, remove_extra_whitespaces);
  return path;
}

const std::string kSpace = "\xE2\x96\x81";

}  // namespace

TEST_CASE("SentencePiece unigram takes the best-scoring segmentation", "[tokenizer]") {
  // ids: 0 <unk>, 1 <s>, 2 </s>, 3 ▁a, 4 ▁ab, 5 b, 6 c, 7 ▁, 8 a, 9 [X]
  auto path = write_model({{"<unk>", 0, 2},
                           {"<s>", 0, 3},
                           {"</s>", 0, 3},
                           {kSpace + "a", -1, 1},
                           {kSpace + "ab", -3, 1},
                           {"b", -1.5f, 1},
                           {"c", -2, 1},
                           {kSpace, -4, 1},
                           {"a", -2, 1},
                           {"[X]", 0, 4}},
                          1, true);
  a2a::SentencePieceTokenizer tokenizer(path);
  CHECK(tokenizer.model_type() == a2a::SentencePieceTokenizer::ModelType::Unigram);
  // "▁a b ▁ c" scores -8.5, better than "▁ab ▁ c" at -9.
  CHECK(tokenizer.encode("ab c") == std::vector<int64_t>{3, 5, 7, 6});
  // Extra whitespace is removed before the dummy prefix is added.
  CHECK(tokenizer.encode("  ab   c  ") == std::vector<int64_t>{3, 5, 7, 6});
  // An unknown character costs min score - 10 and becomes <unk>.
  CHECK(tokenizer.encode("x") == std::vector<int64_t>{7, 0});
  // User-defined pieces are matched whole inside the text.
  CHECK(tokenizer.encode("a[X]c") == std::vector<int64_t>{3, 9, 6});
  CHECK(tokenizer.decode({3, 5, 7, 6}) == "ab c");
  CHECK(tokenizer.bos_id() == 1);
  CHECK(!tokenizer.pad_id());
}

TEST_CASE("SentencePiece BPE merges by piece score and keeps spaces when asked", "[tokenizer]") {
  // ids: 0 <unk>, 1 <s>, 2 </s>, 3 ▁, 4 a, 5 b, 6 ▁a, 7 ab, 8 ▁ab
  auto path = write_model({{"<unk>", 0, 2},
                           {"<s>", 0, 3},
                           {"</s>", 0, 3},
                           {kSpace, -5, 1},
                           {"a", -5, 1},
                           {"b", -5, 1},
                           {kSpace + "a", -1, 1},
                           {"ab", -0.5f, 1},
                           {kSpace + "ab", -2, 1}},
                          2, false);
  a2a::SentencePieceTokenizer tokenizer(path);
  // "ab" (-0.5) merges before "▁a" (-1); then "▁" + "ab" forms "▁ab".
  CHECK(tokenizer.encode("ab") == std::vector<int64_t>{8});
  // Without whitespace removal, the spaces stay: "▁▁ab" -> ▁ ▁ab.
  CHECK(tokenizer.encode(" ab") == std::vector<int64_t>{3, 8});
  // No byte fallback: unknown characters become <unk>.
  CHECK(tokenizer.encode("ac") == std::vector<int64_t>{6, 0});
  CHECK(tokenizer.decode({3, 8}) == " ab");
  CHECK(tokenizer.decode({1, 8, 2}) == "ab");
}

TEST_CASE("SentencePiece: an empty piece is refused (it once made encoding loop forever)", "[tokenizer]") {
  for (int type : {1, 4}) {  // normal and user-defined
    INFO("piece type " << type);
    auto path = write_model({{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"", 0, type}, {"a", -1, 1}}, 1, true);
    try {
      a2a::SentencePieceTokenizer tokenizer(path);
      FAIL("an empty piece was accepted");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "tokenizer_bad_format");
      CHECK(e.message().find("piece 3 is empty") != std::string::npos);
      CHECK(e.message().find(path) != std::string::npos);
    }
  }
}

TEST_CASE("SentencePiece: an unk_id that is not a piece is refused (found by the fuzzer)", "[tokenizer]") {
  const std::string path = a2a::test::scratch_dir() + "/spm_bad_unk.model";
  a2a::test::write_text(path, a2a::fuzz::sentencepiece_model({{"<unk>", 0, 2}, {"a", -1, 1}}, 1, true, 7));
  try {
    a2a::SentencePieceTokenizer tokenizer(path);
    FAIL("a model whose unk_id names no piece was accepted");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "tokenizer_bad_model");
    INFO(e.message());
    CHECK(e.message().find("unk_id 7 is not one of its 2 pieces") != std::string::npos);
  }
}
