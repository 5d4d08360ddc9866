// Unit tests for common/uri.h: percent_decode.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "common/uri.h"

namespace {

struct DecodeCase {
  std::string_view input;
  bool plus_as_space;
  bool ok;
  std::string_view expected;  // only checked when ok
};

}  // namespace

TEST_CASE("percent_decode decodes escapes and rejects malformed ones", "[unit][uri]") {
  using namespace std::string_view_literals;
  const DecodeCase cases[] = {
      {"", false, true, ""},
      {"plain", false, true, "plain"},
      {"a%20b", false, true, "a b"},
      {"%41%42%43", false, true, "ABC"},
      {"%4a%4A", false, true, "JJ"},
      {"%2F", false, true, "/"},
      {"%25", false, true, "%"},
      {"%2525", false, true, "%25"},  // decoded once only
      {"%00", false, true, "\0"sv},
      {"%ff", false, true, "\xff"},
      {"a+b", false, true, "a+b"},
      {"a+b", true, true, "a b"},
      {"a%2Bb", true, true, "a+b"},  // an encoded '+' stays a '+'
      {"%", false, false, ""},
      {"%4", false, false, ""},
      {"abc%", false, false, ""},
      {"%zz", false, false, ""},
      {"%g0", false, false, ""},
      {"%0g", false, false, ""},
      {"%-1", false, false, ""},
      {"%%41", false, false, ""},
  };
  for (const DecodeCase& c : cases) {
    CAPTURE(c.input, c.plus_as_space);
    std::string out = "left over";
    const bool ok = spawnd::percent_decode(c.input, out, c.plus_as_space);
    REQUIRE(ok == c.ok);
    if (c.ok) CHECK(out == c.expected);
  }
}

TEST_CASE("percent_decode replaces the previous contents of the output", "[unit][uri]") {
  std::string out = "something long that must go";
  REQUIRE(spawnd::percent_decode("x", out));
  CHECK(out == "x");
}
