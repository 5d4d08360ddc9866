// UTF-8 validation and character counting (handlers/sdk/include/spawnd/utf8.h), RFC 3629 §4.
#include <catch2/catch.hpp>

#include <spawnd/utf8.h>

#include <optional>
#include <string>

using spawnd::sdk::utf8_length;

TEST_CASE("utf8_length counts code points of valid UTF-8", "[unit][sdk]") {
  CHECK(utf8_length("") == 0u);
  CHECK(utf8_length("hello") == 5u);
  CHECK(utf8_length("caf\xC3\xA9") == 4u);              // é: 2 bytes
  CHECK(utf8_length("\xE2\x82\xAC") == 1u);             // €: 3 bytes
  CHECK(utf8_length("\xF0\x9F\x98\x80") == 1u);         // U+1F600: 4 bytes
  CHECK(utf8_length("\xF4\x8F\xBF\xBF") == 1u);         // U+10FFFF, the last code point
  CHECK(utf8_length(std::string("a\0b", 3)) == 3u);     // NUL is valid UTF-8
}

TEST_CASE("utf8_length rejects ill-formed sequences", "[unit][sdk]") {
  for (const char* bad : {
           "\x80",              // lone continuation byte
           "\xC3",              // truncated 2-byte
           "\xE2\x82",          // truncated 3-byte
           "\xF0\x9F\x98",      // truncated 4-byte
           "\xC0\x80",          // overlong NUL
           "\xC1\xBF",          // overlong
           "\xE0\x80\xAF",      // overlong '/'
           "\xF0\x80\x80\xAF",  // overlong '/'
           "\xED\xA0\x80",      // UTF-16 surrogate U+D800
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xF5\x80\x80\x80",  // never a lead byte
           "\xFF",
           "ok\xC3(",           // bad continuation
       }) {
    INFO(bad);
    CHECK_FALSE(utf8_length(bad).has_value());
    CHECK_FALSE(spawnd::sdk::is_valid_utf8(bad));
  }
}
