// Unit tests for server/http_date.h: IMF-fixdate formatting and parsing of the three HTTP-date formats.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string_view>

#include "server/http_date.h"

using spawnd::server::format_http_date;
using spawnd::server::parse_http_date;

namespace {

constexpr std::time_t kRfcExample = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT, the example of RFC 9110 §5.6.7

}  // namespace

TEST_CASE("format_http_date writes an IMF-fixdate", "[unit][http_date]") {
  struct Case {
    std::time_t t;
    std::string_view text;
  };
  const Case cases[] = {
      {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
      {kRfcExample, "Sun, 06 Nov 1994 08:49:37 GMT"},
      {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
      {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
      {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},
      {4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.t);
    const std::string text = format_http_date(c.t);
    CHECK(text == c.text);
    CHECK(text.size() == 29);
  }
}

TEST_CASE("format_http_date does not depend on the TZ variable", "[unit][http_date]") {
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz ? old_tz : "";
  ::setenv("TZ", "America/New_York", 1);
  ::tzset();
  const std::string text = format_http_date(kRfcExample);
  const std::optional<std::time_t> parsed = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  if (old_tz) {
    ::setenv("TZ", saved.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  CHECK(text == "Sun, 06 Nov 1994 08:49:37 GMT");
  REQUIRE(parsed);
  CHECK(*parsed == kRfcExample);
}

TEST_CASE("format_http_date clamps times it cannot write in 29 bytes", "[unit][http_date]") {
  CHECK(format_http_date(-1) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(format_http_date(std::time_t{1} << 40) == "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST_CASE("parse_http_date accepts all three formats of RFC 9110", "[unit][http_date]") {
  const std::string_view inputs[] = {
      "Sun, 06 Nov 1994 08:49:37 GMT",   // IMF-fixdate
      "Sunday, 06-Nov-94 08:49:37 GMT",  // obsolete RFC 850
      "Sun Nov  6 08:49:37 1994",        // asctime
      "  Sun, 06 Nov 1994 08:49:37 GMT\t",
  };
  for (const std::string_view input : inputs) {
    CAPTURE(input);
    const std::optional<std::time_t> t = parse_http_date(input);
    REQUIRE(t);
    CHECK(*t == kRfcExample);
  }
}

TEST_CASE("parse_http_date reads two-digit RFC 850 years as at most 50 years ahead", "[unit][http_date]") {
  // RFC 9110 §5.6.7: a year more than 50 years in the future is the most recent past year with those digits.
  // 94 is 1994 (2094 is too far ahead) and 30 is 2030, for any run of this test between 1980 and 2044.
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == std::optional<std::time_t>{kRfcExample});
  CHECK(parse_http_date("Tuesday, 01-Jan-30 00:00:00 GMT") == std::optional<std::time_t>{1893456000});
}

TEST_CASE("parse_http_date reads asctime days written with two digits", "[unit][http_date]") {
  CHECK(parse_http_date("Tue Nov 14 22:13:20 2023") == std::optional<std::time_t>{1700000000});
}

TEST_CASE("parse_http_date round-trips format_http_date", "[unit][http_date]") {
  for (std::time_t t : {std::time_t{0}, std::time_t{86399}, kRfcExample, std::time_t{951868799},
                        std::time_t{1700000000}, std::time_t{4102444799}}) {
    CAPTURE(t);
    CHECK(parse_http_date(format_http_date(t)) == std::optional<std::time_t>{t});
  }
}

TEST_CASE("parse_http_date rejects malformed and impossible dates", "[unit][http_date]") {
  const std::string_view inputs[] = {
      "",
      "GMT",
      "yesterday",
      "1994-11-06T08:49:37Z",
      "Sun, 06 Nov 1994 08:49:37",        // no GMT
      "Sun, 06 Nov 1994 08:49:37 UTC",    // only GMT is allowed
      "Sun, 06 Nov 1994 08:49:37 gmt",    // case-sensitive
      "sun, 06 Nov 1994 08:49:37 GMT",
      "Sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 6 Nov 1994 08:49:37 GMT",     // day needs two digits
      "Sun, 06 Nov 94 08:49:37 GMT",      // year needs four digits
      "Sun, 06 Nov 1994 8:49:37 GMT",
      "Sun,06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT x",  // trailing junk
      "Sun, 06 Foo 1994 08:49:37 GMT",
      "Sun, 32 Jan 1994 08:49:37 GMT",
      "Sun, 00 Jan 1994 08:49:37 GMT",
      "Sun, 29 Feb 1900 08:49:37 GMT",    // 1900 is not a leap year
      "Sun, 31 Apr 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:60:00 GMT",
      "Sun, 06 Nov 1994 08:49:61 GMT",
      "Sun, 06 Nov 1994 08:49:3a GMT",
      "Sunday, 06-Nov-1994 08:49:37 GMT",
      "Sun, 06-Nov-94 08:49:37 GMT",      // RFC 850 needs the long day name
      "Sunday, 06 Nov 1994 08:49:37 GMT",
      "Sun Nov 6 08:49:37 1994",          // asctime pads the day with a space
      "Sun Nov  6 08:49:37 94",
      "Sun Nov  6 08:49:37 1994 GMT",
      std::string_view("Sun, 06 Nov 1994 08:49:37 GMT\0x", 31),
  };
  for (const std::string_view input : inputs) {
    CAPTURE(input);
    CHECK_FALSE(parse_http_date(input));
  }
}

TEST_CASE("parse_http_date accepts a leap day and a leap second", "[unit][http_date]") {
  CHECK(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT") == std::optional<std::time_t>{951782400});
  // 23:59:60 is normalised to the next second, as timegm does.
  CHECK(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") == std::optional<std::time_t>{1483228800});
}
