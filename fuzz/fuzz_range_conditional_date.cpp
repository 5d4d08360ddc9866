// fuzz/fuzz_range_conditional_date.cpp — the request fields of a static-file response: Range (server/range.h),
// the conditional fields (server/conditional.h) and HTTP-dates (server/http_date.h).
//
// Input: 8 bytes of representation size, 8 bytes of modification time, then newline-separated field values:
// Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range, and a method.
// Asserts: a Satisfiable range lies within the representation (first <= last < size); a parsed HTTP-date
// formats back to an IMF-fixdate that parses to the same time; a method other than GET/HEAD never gets 304.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/conditional.h"
#include "server/http_date.h"
#include "server/range.h"

namespace srv = spawnd::server;

namespace {

// The largest time an IMF-fixdate holds (9999-12-31 23:59:59 UTC).
constexpr std::time_t kMaxFormattable = 253402300799;

void check_date(std::string_view text) {
  const std::optional<std::time_t> t = srv::parse_http_date(text);
  if (!t || *t < 0 || *t > kMaxFormattable) return;
  const std::string formatted = srv::format_http_date(*t);
  FUZZ_CHECK(formatted.size() == 29);
  const std::optional<std::time_t> again = srv::parse_http_date(formatted);
  FUZZ_CHECK(again.has_value() && *again == *t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spawnd::fuzz::FuzzInput input(data, size);
  const std::uint64_t size_bytes = input.u64();
  const std::uint64_t mtime_bits = input.u64();
  const auto last_modified = static_cast<std::time_t>(mtime_bits % (kMaxFormattable + 1));
  const std::string_view range = input.line();
  srv::Preconditions pre;
  pre.if_match = input.line();
  pre.if_none_match = input.line();
  pre.if_modified_since = input.line();
  pre.if_unmodified_since = input.line();
  const std::string_view if_range = input.line();
  const std::string_view method = input.line();

  srv::ByteRange r;
  if (srv::parse_range(range, size_bytes, r) == srv::RangeStatus::Satisfiable) {
    FUZZ_CHECK(r.first <= r.last);
    FUZZ_CHECK(r.last < size_bytes);
    FUZZ_CHECK(r.length() <= size_bytes);
  }
  for (std::string_view date : {range, pre.if_modified_since, pre.if_unmodified_since, if_range, method})
    check_date(date);

  const std::string etag = srv::make_etag(size_bytes, static_cast<std::int64_t>(mtime_bits));
  const srv::PreconditionResult result = srv::evaluate_preconditions(method, pre, etag, last_modified);
  if (result == srv::PreconditionResult::NotModified) FUZZ_CHECK(method == "GET" || method == "HEAD");
  // Our own tag always matches itself, strongly and weakly.
  srv::Preconditions own;
  own.if_match = etag;
  FUZZ_CHECK(srv::evaluate_preconditions("GET", own, etag, last_modified) == srv::PreconditionResult::Proceed);
  (void)srv::if_range_allows(if_range, etag, last_modified);
  FUZZ_CHECK(srv::if_range_allows(etag, etag, last_modified));
  return 0;
}
