// The byte tokenizer of the tiny presets, in the three id layouts the presets use.
#include "test_support.h"
#include "tokenizers/byte_tokenizer.h"

TEST_CASE("byte tokenizer: LLM layout round-trips text and added tokens follow the byte range", "[byte_tokenizer]") {
  a2a::ByteTokenizer bytes;
  CHECK(bytes.encode("hi") == std::vector<int64_t>{'h', 'i'});
  CHECK(bytes.vocab_size() == 258);
  const auto ids = bytes.add_special_tokens({"[IMG0]", "[IMG1]"});
  CHECK(ids == std::vector<int64_t>{258, 259});
  CHECK(bytes.encode("a[IMG1]b") == std::vector<int64_t>{'a', 259, 'b'});
  CHECK(bytes.decode(bytes.encode("caf\xC3\xA9 [IMG0]")) == "caf\xC3\xA9 [IMG0]");
  CHECK(bytes.decode({'a', 258}, true) == "a");
  CHECK(*bytes.bos_id() == a2a::ByteTokenizer::kBos);
}

TEST_CASE("byte tokenizer: CLIP layout pads with the end id and cuts to the length", "[byte_tokenizer]") {
  a2a::ByteTokenizer bytes;
  const auto padded = bytes.encode_padded("abc", 6, a2a::ByteTokenizer::kEos);
  CHECK(padded.ids == std::vector<int64_t>{256, 'a', 'b', 'c', 257, 257});
  CHECK(padded.mask == std::vector<int64_t>{1, 1, 1, 1, 1, 0});
  const auto cut = bytes.encode_padded("abcdef", 4, a2a::ByteTokenizer::kEos);
  CHECK(cut.ids == std::vector<int64_t>{256, 'a', 'b', 257});
  CHECK(cut.mask == std::vector<int64_t>{1, 1, 1, 1});
}

TEST_CASE("byte tokenizer: RoBERTa layout shifts bytes past <s>, <pad> and </s>", "[byte_tokenizer]") {
  a2a::ByteTokenizer bytes({/*byte_offset=*/3, /*bos_id=*/0, /*eos_id=*/2, /*first_added_id=*/259});
  CHECK(bytes.encode("A") == std::vector<int64_t>{'A' + 3});
  CHECK(bytes.vocab_size() == 259);
  CHECK(bytes.decode({0, 'A' + 3, 2}) == "A");
  const auto padded = bytes.encode_padded("A", 4, 1);
  CHECK(padded.ids == std::vector<int64_t>{0, 'A' + 3, 2, 1});
  CHECK(*bytes.token_to_id("A") == 'A' + 3);
}
