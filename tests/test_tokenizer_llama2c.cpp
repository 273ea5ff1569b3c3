// llama2.c tokenizer (tok512.bin) against run.c's ids in fixtures/llama2c/expected.json.
#include "base/error.h"
#include "test_support.h"
#include "tokenizers/llama2c_tokenizer.h"

TEST_CASE("llama2.c tokenizer encodes like run.c", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("llama2c/tok512.bin");
  auto expected = a2a::test::read_json(a2a::test::fixture_path("llama2c/expected.json"));
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("llama2c/tok512.bin"));
  auto* llama2c = dynamic_cast<a2a::Llama2cTokenizer*>(tokenizer.get());
  REQUIRE(llama2c);
  for (const auto& [text, ids] : expected["encode"].items()) {
    INFO("text: " << text);
    CHECK(llama2c->encode(text, true, false) == ids.get<std::vector<int64_t>>());
    CHECK(tokenizer->encode_with_special(text) == ids.get<std::vector<int64_t>>());
  }
  CHECK(tokenizer->bos_id() == 1);
  CHECK(tokenizer->eos_id() == 2);
  CHECK(tokenizer->vocab_size() == 512);
}

TEST_CASE("llama2.c tokenizer round-trips text, bytes included", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("llama2c/tok512.bin");
  auto expected = a2a::test::read_json(a2a::test::fixture_path("llama2c/expected.json"));
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("llama2c/tok512.bin"));
  std::vector<std::string> texts{"", "Once upon a time", "Lily's mom said, \"Hi!\"\nThe end.",
                                 "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80", "  two  spaces "};
  for (const auto& g : expected["greedy"]) texts.push_back(g["text"]);
  for (const auto& text : texts) {
    INFO("text: " << text);
    auto ids = tokenizer->encode(text);
    CHECK(tokenizer->decode(ids) == text);
    std::vector<int64_t> with_bos{1};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    CHECK(tokenizer->decode(with_bos, true) == text);
  }
  // Byte fallback: a character missing from the 512-piece vocabulary becomes <0xXX> tokens (byte + 3).
  auto ids = tokenizer->encode("\xE6\x97\xA5");
  REQUIRE(ids.size() >= 3);
  CHECK(ids[ids.size() - 3] == 0xE6 + 3);
  CHECK(tokenizer->token_text(0x0A + 3) == "\n");
}

TEST_CASE("llama2.c tokenizer: signal tokens and bad files", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("llama2c/tok512.bin");
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("llama2c/tok512.bin"), "llama2c");
  auto added = tokenizer->add_special_tokens({"[IMG0]", "[IMG1]"});
  CHECK(added == std::vector<int64_t>{512, 513});
  CHECK(tokenizer->add_special_tokens({"[IMG1]"}) == std::vector<int64_t>{513});
  auto ids = tokenizer->encode("a cat[IMG0][IMG1]");
  REQUIRE(ids.size() >= 2);
  CHECK(ids[ids.size() - 2] == 512);
  CHECK(ids.back() == 513);
  CHECK(tokenizer->decode(ids) == "a cat[IMG0][IMG1]");
  CHECK(tokenizer->token_text(513) == "[IMG1]");
  CHECK(tokenizer->vocab_size() == 514);

  auto truncated = a2a::test::scratch_dir() + "/truncated_tok.bin";
  {
    std::ifstream in(a2a::test::fixture_path("llama2c/tok512.bin"), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(truncated, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size() / 2));
  }
  CHECK_THROWS_AS(a2a::load_tokenizer(truncated), a2a::Error);
}
