// Unit tests for server/conditional.h: entity tags, RFC 9110 §13.2.2 precondition order, If-Range.
#include <catch2/catch.hpp>

#include <string_view>

#include "server/conditional.h"

using spawnd::server::evaluate_preconditions;
using spawnd::server::if_range_allows;
using spawnd::server::make_etag;
using spawnd::server::PreconditionResult;
using spawnd::server::Preconditions;

namespace {

constexpr std::string_view kEtag = "\"1f4-5f5e100\"";
constexpr std::time_t kModified = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr std::string_view kModifiedText = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr std::string_view kEarlierText = "Sun, 06 Nov 1994 08:49:36 GMT";
constexpr std::string_view kLaterText = "Sun, 06 Nov 1994 08:49:38 GMT";

const char* to_string(PreconditionResult r) {
  switch (r) {
    case PreconditionResult::Proceed: return "Proceed";
    case PreconditionResult::NotModified: return "NotModified";
    case PreconditionResult::PreconditionFailed: return "PreconditionFailed";
  }
  return "?";
}

struct PreCase {
  const char* description;
  std::string_view method;
  Preconditions pre;
  PreconditionResult expected;
};

void check_cases(std::initializer_list<PreCase> cases) {
  for (const PreCase& c : cases) {
    CAPTURE(c.description, c.method);
    const PreconditionResult got = evaluate_preconditions(c.method, c.pre, kEtag, kModified);
    INFO("got " << to_string(got) << ", expected " << to_string(c.expected));
    CHECK(got == c.expected);
  }
}

}  // namespace

TEST_CASE("make_etag is a quoted strong tag of size and mtime in hex", "[unit][conditional]") {
  CHECK(make_etag(500, 100000000) == kEtag);
  CHECK(make_etag(0, 0) == "\"0-0\"");
  CHECK(make_etag(0xffffffffffffffffULL, 1) == "\"ffffffffffffffff-1\"");
  CHECK(make_etag(1, 2) != make_etag(1, 3));
  CHECK(make_etag(1, 2) != make_etag(2, 2));
}

TEST_CASE("no precondition fields means proceed", "[unit][conditional]") {
  check_cases({
      {"GET, nothing", "GET", {}, PreconditionResult::Proceed},
      {"POST, nothing", "POST", {}, PreconditionResult::Proceed},
  });
}

TEST_CASE("If-None-Match uses weak comparison and gives 304 for GET and HEAD", "[unit][conditional]") {
  check_cases({
      {"same tag", "GET", {.if_none_match = kEtag}, PreconditionResult::NotModified},
      {"same tag, HEAD", "HEAD", {.if_none_match = kEtag}, PreconditionResult::NotModified},
      {"weak form of the tag", "GET", {.if_none_match = "W/\"1f4-5f5e100\""}, PreconditionResult::NotModified},
      {"other tag", "GET", {.if_none_match = "\"other\""}, PreconditionResult::Proceed},
      {"star", "GET", {.if_none_match = "*"}, PreconditionResult::NotModified},
      {"list, match last", "GET", {.if_none_match = "\"a\", W/\"b\", \"1f4-5f5e100\""},
       PreconditionResult::NotModified},
      {"list, match first", "GET", {.if_none_match = "\"1f4-5f5e100\",\"a\""}, PreconditionResult::NotModified},
      {"list with empty elements", "GET", {.if_none_match = " , \"a\" ,, \"1f4-5f5e100\" ,"},
       PreconditionResult::NotModified},
      {"list, no match", "GET", {.if_none_match = "\"a\", \"b\""}, PreconditionResult::Proceed},
      {"unquoted tag is malformed", "GET", {.if_none_match = "1f4-5f5e100"}, PreconditionResult::Proceed},
      {"prefix of the tag", "GET", {.if_none_match = "\"1f4\""}, PreconditionResult::Proceed},
      {"same tag, POST", "POST", {.if_none_match = kEtag}, PreconditionResult::PreconditionFailed},
      {"star, PUT", "PUT", {.if_none_match = "*"}, PreconditionResult::PreconditionFailed},
      {"other tag, POST", "POST", {.if_none_match = "\"other\""}, PreconditionResult::Proceed},
  });
}

TEST_CASE("If-Match uses strong comparison", "[unit][conditional]") {
  check_cases({
      {"same tag", "GET", {.if_match = kEtag}, PreconditionResult::Proceed},
      {"star", "PUT", {.if_match = "*"}, PreconditionResult::Proceed},
      {"list containing the tag", "GET", {.if_match = "\"x\", \"1f4-5f5e100\""}, PreconditionResult::Proceed},
      {"weak form does not match strongly", "GET", {.if_match = "W/\"1f4-5f5e100\""},
       PreconditionResult::PreconditionFailed},
      {"other tag", "GET", {.if_match = "\"other\""}, PreconditionResult::PreconditionFailed},
      {"malformed", "GET", {.if_match = "garbage"}, PreconditionResult::PreconditionFailed},
  });
}

TEST_CASE("If-Modified-Since gives 304 when the file is not newer, for GET and HEAD only", "[unit][conditional]") {
  check_cases({
      {"same date", "GET", {.if_modified_since = kModifiedText}, PreconditionResult::NotModified},
      {"later date", "HEAD", {.if_modified_since = kLaterText}, PreconditionResult::NotModified},
      {"earlier date", "GET", {.if_modified_since = kEarlierText}, PreconditionResult::Proceed},
      {"RFC 850 date", "GET", {.if_modified_since = "Sunday, 06-Nov-94 08:49:37 GMT"},
       PreconditionResult::NotModified},
      {"asctime date", "GET", {.if_modified_since = "Sun Nov  6 08:49:37 1994"}, PreconditionResult::NotModified},
      {"invalid date is ignored", "GET", {.if_modified_since = "not a date"}, PreconditionResult::Proceed},
      {"POST ignores it", "POST", {.if_modified_since = kLaterText}, PreconditionResult::Proceed},
  });
}

TEST_CASE("If-Unmodified-Since fails when the file is newer", "[unit][conditional]") {
  check_cases({
      {"same date", "GET", {.if_unmodified_since = kModifiedText}, PreconditionResult::Proceed},
      {"later date", "PUT", {.if_unmodified_since = kLaterText}, PreconditionResult::Proceed},
      {"earlier date", "GET", {.if_unmodified_since = kEarlierText}, PreconditionResult::PreconditionFailed},
      {"invalid date is ignored", "GET", {.if_unmodified_since = "soon"}, PreconditionResult::Proceed},
  });
}

TEST_CASE("preconditions are evaluated in the order of RFC 9110 section 13.2.2", "[unit][conditional]") {
  check_cases({
      // Step 1 before step 3: a failing If-Match wins over a matching If-None-Match.
      {"If-Match fails first", "GET", {.if_match = "\"other\"", .if_none_match = kEtag},
       PreconditionResult::PreconditionFailed},
      // Step 2 is skipped when If-Match is present.
      {"If-Match present, If-Unmodified-Since ignored", "GET",
       {.if_match = kEtag, .if_unmodified_since = kEarlierText}, PreconditionResult::Proceed},
      {"If-Unmodified-Since fails before If-None-Match", "GET",
       {.if_none_match = kEtag, .if_unmodified_since = kEarlierText}, PreconditionResult::PreconditionFailed},
      // Step 4 is skipped when If-None-Match is present, even when it does not match.
      {"If-None-Match present, If-Modified-Since ignored", "GET",
       {.if_none_match = "\"other\"", .if_modified_since = kLaterText}, PreconditionResult::Proceed},
      {"If-None-Match matches, If-Modified-Since says modified", "GET",
       {.if_none_match = kEtag, .if_modified_since = kEarlierText}, PreconditionResult::NotModified},
      {"If-Match passes, If-None-Match matches", "GET", {.if_match = kEtag, .if_none_match = kEtag},
       PreconditionResult::NotModified},
      {"If-Match passes, If-Modified-Since not modified", "HEAD",
       {.if_match = "*", .if_modified_since = kModifiedText}, PreconditionResult::NotModified},
  });
}

TEST_CASE("If-Range allows the range only for a strongly matching validator", "[unit][conditional]") {
  struct Case {
    std::string_view if_range;
    bool allowed;
  };
  const Case cases[] = {
      {"", true},
      {kEtag, true},
      {" \"1f4-5f5e100\" ", true},
      {"W/\"1f4-5f5e100\"", false},
      {"\"other\"", false},
      {"\"1f4-5f5e100\", \"x\"", false},  // a list is not a validator
      {kModifiedText, true},
      {"Sunday, 06-Nov-94 08:49:37 GMT", true},
      {kEarlierText, false},
      {kLaterText, false},  // exact match only
      {"garbage", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.if_range);
    CHECK(if_range_allows(c.if_range, kEtag, kModified) == c.allowed);
  }
}
