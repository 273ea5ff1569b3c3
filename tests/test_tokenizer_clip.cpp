// CLIP tokenizer against OpenAI CLIP's ids (fixtures/tokenizers/clip/cases.json).
#include "base/error.h"
#include "test_support.h"
#include "tokenizers/clip_tokenizer.h"

namespace {

std::string clip_dir() { return a2a::test::fixture_path("tokenizers/clip"); }

std::vector<int64_t> ids_of(const nlohmann::json& array) { return array.get<std::vector<int64_t>>(); }

}  // namespace

TEST_CASE("CLIP tokenizer matches OpenAI CLIP ids on every case", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/clip/cases.json");
  auto tokenizer = a2a::ClipTokenizer::from_folder(clip_dir());
  auto cases = a2a::test::read_json(clip_dir() + "/cases.json");
  int checked = 0;
  for (const auto& c : cases["cases"]) {
    const std::string text = c["text"];
    INFO("text: " << text);
    CHECK(tokenizer->encode(text) == ids_of(c["ids"]));
    CHECK(tokenizer->encode_with_special(text) == ids_of(c["input_ids"]));
    auto padded = tokenizer->encode_padded(text, 77);
    CHECK(padded.ids == ids_of(c["input_ids_padded_77"]));
    CHECK(padded.attention_mask == ids_of(c["attention_mask_padded_77"]));
    CHECK(padded.truncated == c["truncated"].get<bool>());
    ++checked;
  }
  CHECK(checked == static_cast<int>(cases["cases"].size()));
}

TEST_CASE("CLIP tokenizer decodes to the cleaned text", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/clip/cases.json");
  auto tokenizer = a2a::ClipTokenizer::from_folder(clip_dir());
  auto cases = a2a::test::read_json(clip_dir() + "/cases.json");
  for (const auto& c : cases["cases"]) {
    if (c["truncated"].get<bool>()) continue;
    INFO("text: " << c["text"].get<std::string>());
    CHECK(tokenizer->decode(ids_of(c["input_ids"]), true) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("CLIP tokenizer: special ids, padding and added tokens", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/clip/vocab.json");
  auto tokenizer = a2a::load_tokenizer(clip_dir(), "clip");
  REQUIRE(tokenizer->bos_id() == tokenizer->token_to_id("<|startoftext|>"));
  REQUIRE(tokenizer->eos_id() == tokenizer->token_to_id("<|endoftext|>"));
  CHECK(tokenizer->pad_id() == tokenizer->eos_id());
  const int64_t base = tokenizer->vocab_size();
  auto added = tokenizer->add_special_tokens({"[IMG0]", "[IMG1]"});
  CHECK(added == std::vector<int64_t>{base, base + 1});
  auto ids = tokenizer->encode("a cat[IMG0] [IMG1]");
  auto plain = tokenizer->encode("a cat");
  plain.push_back(base);
  plain.push_back(base + 1);
  CHECK(ids == plain);
  auto* clip = dynamic_cast<a2a::ClipTokenizer*>(tokenizer.get());
  REQUIRE(clip);
  auto short_padded = clip->encode_padded("a cat", 8);
  CHECK(short_padded.ids.size() == 8);
  CHECK(short_padded.attention_mask == std::vector<int64_t>{1, 1, 1, 1, 0, 0, 0, 0});
  CHECK_THROWS_AS(a2a::load_tokenizer(clip_dir() + "/missing", "clip"), a2a::Error);
}

TEST_CASE("CLIP clean-up follows ftfy and html.unescape", "[tokenizer]") {
  using a2a::ClipTokenizer;
  CHECK(ClipTokenizer::clean_text("  \xEF\xBC\xAC\xEF\xBC\xAF\xEF\xBC\xB5\xEF\xBC\xA4\xE3\x80\x80NOISES ") ==
        "loud noises");
  CHECK(ClipTokenizer::clean_text("\xEF\xAC\x81sh &amp;amp; &lt;chips&gt;") == "fish & <chips>");
  CHECK(ClipTokenizer::clean_text("\xE2\x80\x9Cquoted\xE2\x80\x9D \xE2\x80\x98x\xE2\x80\x99") == "\"quoted\" 'x'");
  // NFC composes e + U+0301.
  CHECK(ClipTokenizer::clean_text("Cafe\xCC\x81") == "caf\xC3\xA9");
  CHECK(ClipTokenizer::clean_text("A\tB\nC\xC2\xA0"
                                  "D") == "a b c d");
}

TEST_CASE("vocab.json ids past the vocabulary are refused with the file named", "[tokenizer]") {
  const std::string dir = a2a::test::fresh_dir("hostile_vocab_json");
  a2a::test::write_text(dir + "/merges.txt", "#version: 0.2\n");
  for (const char* id : {"100000000", "2147483647", "-5"}) {
    a2a::test::write_text(dir + "/vocab.json", std::string(R"({"a": 0, "b": )") + id + "}");
    INFO(id);
    try {
      a2a::ClipTokenizer(dir + "/vocab.json", dir + "/merges.txt");
      FAIL("no error");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "tokenizer_bad_vocab");
      CHECK(e.message().find(dir + "/vocab.json") != std::string::npos);
      CHECK(e.message().find(std::string("has id ") + id) != std::string::npos);
    }
  }
  a2a::test::write_text(dir + "/vocab.json", "{\"a\": " + std::string(1000000, '[') + std::string(1000000, ']') + "}");
  try {
    a2a::ClipTokenizer(dir + "/vocab.json", dir + "/merges.txt");
    FAIL("no error");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "json_too_deep");
  }
}
