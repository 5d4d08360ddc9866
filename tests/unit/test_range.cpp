// Unit tests for server/range.h: parse_range for a single byte range.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string_view>

#include "server/range.h"

using spawnd::server::ByteRange;
using spawnd::server::parse_range;
using spawnd::server::RangeStatus;

namespace {

const char* to_string(RangeStatus s) {
  switch (s) {
    case RangeStatus::Ignore: return "Ignore";
    case RangeStatus::Satisfiable: return "Satisfiable";
    case RangeStatus::Unsatisfiable: return "Unsatisfiable";
  }
  return "?";
}

struct RangeCase {
  std::string_view field;
  std::uint64_t size;
  RangeStatus status;
  std::uint64_t first;  // only checked when Satisfiable
  std::uint64_t last;
};

void check_cases(std::initializer_list<RangeCase> cases) {
  for (const RangeCase& c : cases) {
    CAPTURE(c.field, c.size);
    ByteRange out;
    const RangeStatus status = parse_range(c.field, c.size, out);
    INFO("got " << to_string(status) << " " << out.first << "-" << out.last << ", expected "
                << to_string(c.status));
    REQUIRE(status == c.status);
    if (c.status == RangeStatus::Satisfiable) {
      CHECK(out.first == c.first);
      CHECK(out.last == c.last);
      CHECK(out.last < c.size);
    }
  }
}

constexpr auto Sat = RangeStatus::Satisfiable;
constexpr auto Unsat = RangeStatus::Unsatisfiable;
constexpr auto Ignore = RangeStatus::Ignore;

}  // namespace

TEST_CASE("ByteRange length is inclusive", "[unit][range]") {
  CHECK(ByteRange{0, 499}.length() == 500);
  CHECK(ByteRange{7, 7}.length() == 1);
}

TEST_CASE("simple byte ranges select the bytes asked for", "[unit][range]") {
  check_cases({
      {"bytes=0-499", 10000, Sat, 0, 499},
      {"bytes=500-999", 10000, Sat, 500, 999},
      {"bytes=0-0", 1, Sat, 0, 0},
      {"bytes=9999-9999", 10000, Sat, 9999, 9999},
      {"bytes=500-", 10000, Sat, 500, 9999},
      {"bytes=0-", 10000, Sat, 0, 9999},
      {"bytes=-500", 10000, Sat, 9500, 9999},
      {"bytes=-1", 10000, Sat, 9999, 9999},
      {"Bytes=0-3", 10, Sat, 0, 3},   // the unit is case-insensitive
      {"BYTES=0-3", 10, Sat, 0, 3},
      {" bytes=0-3 ", 10, Sat, 0, 3},  // surrounding whitespace
      {"bytes= 0-3", 10, Sat, 0, 3},   // OWS around list elements
      {"bytes=0-3,", 10, Sat, 0, 3},   // empty list elements are skipped
      {"bytes=,0-3", 10, Sat, 0, 3},
      {"bytes=007-008", 10, Sat, 7, 8},
  });
}

TEST_CASE("a last position past the end is clamped and a long suffix selects everything", "[unit][range]") {
  check_cases({
      {"bytes=0-499", 100, Sat, 0, 99},
      {"bytes=50-1000000", 100, Sat, 50, 99},
      {"bytes=-500", 100, Sat, 0, 99},
      {"bytes=-100", 100, Sat, 0, 99},
      {"bytes=-99", 100, Sat, 1, 99},
  });
}

TEST_CASE("a first position at or past the end is unsatisfiable", "[unit][range]") {
  check_cases({
      {"bytes=100-", 100, Unsat, 0, 0},
      {"bytes=100-200", 100, Unsat, 0, 0},
      {"bytes=1000-", 100, Unsat, 0, 0},
      {"bytes=-0", 100, Unsat, 0, 0},  // a zero-length suffix selects nothing (RFC 9110 §14.1.1)
  });
}

TEST_CASE("ranges of an empty representation are unsatisfiable, except a suffix which is ignored", "[unit][range]") {
  check_cases({
      {"bytes=0-", 0, Unsat, 0, 0},
      {"bytes=0-0", 0, Unsat, 0, 0},
      {"bytes=0-499", 0, Unsat, 0, 0},
      {"bytes=-0", 0, Unsat, 0, 0},
      {"bytes=-1", 0, Ignore, 0, 0},
  });
}

TEST_CASE("multiple ranges are ignored", "[unit][range]") {
  check_cases({
      {"bytes=0-1,3-4", 100, Ignore, 0, 0},
      {"bytes=0-1, 5-", 100, Ignore, 0, 0},
      {"bytes=-1,-2", 100, Ignore, 0, 0},
      {"bytes=0-1,500-600", 100, Ignore, 0, 0},
  });
}

TEST_CASE("syntactically invalid Range fields are ignored", "[unit][range]") {
  check_cases({
      {"", 100, Ignore, 0, 0},
      {"bytes", 100, Ignore, 0, 0},
      {"bytes=", 100, Ignore, 0, 0},
      {"bytes=,", 100, Ignore, 0, 0},
      {"bytes=-", 100, Ignore, 0, 0},
      {"bytes=5", 100, Ignore, 0, 0},
      {"bytes=a-b", 100, Ignore, 0, 0},
      {"bytes=1-a", 100, Ignore, 0, 0},
      {"bytes=-a", 100, Ignore, 0, 0},
      {"bytes=1-2-3", 100, Ignore, 0, 0},
      {"bytes=+1-2", 100, Ignore, 0, 0},
      {"bytes=-1-2", 100, Ignore, 0, 0},
      {"bytes=1 -2", 100, Ignore, 0, 0},
      {"bytes=5-4", 100, Ignore, 0, 0},  // last < first is invalid, not unsatisfiable
      {"bytes =0-1", 100, Ignore, 0, 0},
      {"bits=0-1", 100, Ignore, 0, 0},   // another unit
      {"items=0-1", 100, Ignore, 0, 0},
      {"0-1", 100, Ignore, 0, 0},
  });
}

TEST_CASE("huge numbers saturate instead of overflowing", "[unit][range]") {
  constexpr std::uint64_t kBig = 0xffffffffffffffffULL;
  check_cases({
      {"bytes=0-18446744073709551615", 100, Sat, 0, 99},
      {"bytes=0-99999999999999999999999999999", 100, Sat, 0, 99},
      {"bytes=99999999999999999999999999999-", 100, Unsat, 0, 0},
      {"bytes=18446744073709551616-", 100, Unsat, 0, 0},
      {"bytes=-99999999999999999999999999999", 100, Sat, 0, 99},
      {"bytes=99999999999999999999-99999999999999999999", 100, Unsat, 0, 0},
      // A huge first position wrapping around to a small one would be a security bug.
      {"bytes=18446744073709551617-18446744073709551618", 100, Unsat, 0, 0},
      {"bytes=18446744073709551614-", kBig, Sat, kBig - 1, kBig - 1},
  });
}
