// Unicode helpers behind the tokenizers, checked against values Python gives.
#include "test_support.h"
#include "tokenizers/bpe_merges.h"
#include "tokenizers/text_cleanup.h"
#include "tokenizers/unicode.h"

TEST_CASE("NFC composes, reorders and leaves composed text alone", "[tokenizer]") {
  using a2a::unicode::nfc;
  CHECK(nfc("e\xCC\x81") == "\xC3\xA9");  // e + acute -> é
  CHECK(nfc("\xC3\xA9") == "\xC3\xA9");
  CHECK(nfc("a\xCC\xA3\xCC\x87") == "\xE1\xBA\xA1\xCC\x87");  // a + dot below + dot above -> ạ + dot above
  CHECK(nfc("a\xCC\x87\xCC\xA3") == "\xE1\xBA\xA1\xCC\x87");  // canonical reordering first
  CHECK(nfc("\xE1\x84\x80\xE1\x85\xA1") == "\xEA\xB0\x80");   // Hangul L + V -> 가
  CHECK(nfc("\xE2\x84\xAB") == "\xC3\x85");                   // Angstrom sign is a singleton -> Å
  CHECK(nfc("plain ascii") == "plain ascii");
}

TEST_CASE("Python lower() and whitespace", "[tokenizer]") {
  using a2a::unicode::python_lower;
  CHECK(python_lower("\xC3\x9C"
                     "NICODE \xD0\x9F\xD0\xA0\xD0\x98") ==
        "\xC3\xBC"
        "nicode \xD0\xBF\xD1\x80\xD0\xB8");
  CHECK(python_lower("\xC4\xB0") == "i\xCC\x87");  // U+0130 lowers to two code points
  CHECK(a2a::unicode::is_python_space(0x3000));
  CHECK(a2a::unicode::is_python_space(0x1C));
  CHECK(!a2a::unicode::is_python_space(0x200B));
}

TEST_CASE("Invalid UTF-8 becomes one U+FFFD per maximal bad run", "[tokenizer]") {
  using a2a::unicode::sanitize_utf8;
  const std::string replacement = "\xEF\xBF\xBD";
  CHECK(sanitize_utf8("ok") == "ok");
  CHECK(sanitize_utf8("\xE2\x82") == replacement);
  CHECK(sanitize_utf8("\xE2\x82x") == replacement + "x");
  CHECK(sanitize_utf8("\xFF\xFE") == replacement + replacement);
  CHECK(sanitize_utf8("\xED\xA0\x80") == replacement + replacement + replacement);  // surrogate
}

TEST_CASE("html.unescape rules", "[tokenizer]") {
  using a2a::tokenizers::html_unescape;
  CHECK(html_unescape("&amp &ampx &notit; &#65 &#x41; &#1234567;") == "& &x \xC2\xACit; A A \xEF\xBF\xBD");
  CHECK(html_unescape("&lt;tag&gt; &unknown; &") == "<tag> &unknown; &");
  CHECK(html_unescape("&#x80;") == "\xE2\x82\xAC");
}

TEST_CASE("BPE merges by rank, leftmost first, also on long words", "[tokenizer]") {
  a2a::bpe::MergeTable table;
  table.add(0, 0, 1);  // a a -> aa
  table.add(1, 1, 2);  // aa aa -> aaaa
  std::vector<int32_t> short_word{0, 0, 0, 0, 0};
  table.apply(short_word);
  CHECK(short_word == std::vector<int32_t>{2, 0});
  std::vector<int32_t> long_word(21, 0);
  table.apply(long_word);
  CHECK(long_word == std::vector<int32_t>{2, 2, 2, 2, 2, 0});
  std::vector<int32_t> unknown{0, a2a::bpe::kNoToken, 0};
  table.apply(unknown);
  CHECK(unknown == std::vector<int32_t>{0, a2a::bpe::kNoToken, 0});
}
