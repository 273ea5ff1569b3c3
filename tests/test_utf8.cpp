// UTF-8 validity, as configs and --set arguments are checked.
#include "base/utf8.h"
#include "test_support.h"

TEST_CASE("invalid_utf8_offset finds the first ill-formed byte", "[utf8]") {
  const size_t ok = std::string::npos;
  CHECK(a2a::invalid_utf8_offset("") == ok);
  CHECK(a2a::invalid_utf8_offset("plain ascii\n") == ok);
  CHECK(a2a::invalid_utf8_offset("caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF") == ok);
  CHECK(a2a::invalid_utf8_offset("ab\x98") == 2);                 // a lone continuation byte
  CHECK(a2a::invalid_utf8_offset("a\xC0\x80") == 1);              // overlong NUL
  CHECK(a2a::invalid_utf8_offset("a\xE0\x80\x80") == 1);          // overlong 3-byte
  CHECK(a2a::invalid_utf8_offset("a\xED\xA0\x80") == 1);          // a surrogate
  CHECK(a2a::invalid_utf8_offset("a\xF4\x90\x80\x80") == 1);      // past U+10FFFF
  CHECK(a2a::invalid_utf8_offset("a\xF0\x9F\x98") == 1);          // cut short
  CHECK(a2a::invalid_utf8_offset("\xC3\xA9\xE6\x97\x41") == 2);   // a bad third byte
  CHECK(a2a::invalid_utf8_offset(std::string("a\0b", 3)) == ok);  // NUL is a character
}
