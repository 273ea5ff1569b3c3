// SentencePiece model parsing and encoding on small models written here in the protobuf wire format, so
// that unigram, user-defined pieces and whitespace normalisation are covered next to the Llama-2 vectors.
#include <cstring>

#include "base/error.h"
#include "test_support.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace {

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_int(std::string& out, int field, int64_t value) {
  put_varint(out, static_cast<uint64_t>(field) << 3);
  put_varint(out, static_cast<uint64_t>(value));
}

void put_float(std::string& out, int field, float value) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 5);
  char raw[4];
  std::memcpy(raw, &value, 4);
  out.append(raw, 4);
}

struct PieceSpec {
  std::string text;
  float score;
  int type;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte
};

std::string write_model(const std::vector<PieceSpec>& pieces, int model_type, bool remove_extra_whitespaces) {
  std::string model;
  for (const auto& p : pieces) {
    std::string piece;
    put_bytes(piece, 1, p.text);
    put_float(piece, 2, p.score);
    put_int(piece, 3, p.type);
    put_bytes(model, 1, piece);
  }
  std::string trainer;
  put_int(trainer, 3, model_type);
  put_int(trainer, 40, 0);
  put_int(trainer, 41, 1);
  put_int(trainer, 42, 2);
  put_int(trainer, 43, -1);
  put_bytes(model, 2, trainer);
  std::string normalizer;
  put_bytes(normalizer, 1, "identity");
  put_int(normalizer, 3, 1);
  put_int(normalizer, 4, remove_extra_whitespaces ? 1 : 0);
  put_bytes(model, 3, normalizer);
  const std::string path = a2a::test::scratch_dir() + "/spm_" + std::to_string(model_type) + ".model";
  std::ofstream(path, std::ios::binary) << model;
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
