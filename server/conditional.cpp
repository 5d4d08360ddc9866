// server/conditional.cpp — RFC 9110 §13 preconditions for static representations.
#include "server/conditional.h"

#include <charconv>
#include <optional>

#include "server/http_date.h"

namespace spawnd::server {
namespace {

struct EntityTag {
  bool is_weak = false;
  std::string_view opaque;  // including the double quotes
};

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3)
bool is_etagc(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u != 0x7F);
}

// Parses one entity-tag at the front of `s` and consumes it.
std::optional<EntityTag> take_entity_tag(std::string_view& s) {
  EntityTag tag;
  std::string_view rest = s;
  if (rest.substr(0, 2) == "W/") {
    tag.is_weak = true;
    rest.remove_prefix(2);
  }
  if (rest.empty() || rest.front() != '"') return std::nullopt;
  std::size_t end = 1;
  while (end < rest.size() && is_etagc(rest[end])) ++end;
  if (end >= rest.size() || rest[end] != '"') return std::nullopt;
  tag.opaque = rest.substr(0, end + 1);
  s = rest.substr(end + 1);
  return tag;
}

// The whole field value as a single entity-tag (surrounding OWS allowed), or nullopt.
std::optional<EntityTag> parse_single_tag(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  std::optional<EntityTag> tag = take_entity_tag(s);
  if (!tag || !s.empty()) return std::nullopt;
  return tag;
}

enum class Comparison { Strong, Weak };

// RFC 9110 §8.8.3.2: strong comparison needs both tags strong and equal; weak comparison ignores W/.
bool tags_match(const EntityTag& a, const EntityTag& b, Comparison how) {
  if (how == Comparison::Strong && (a.is_weak || b.is_weak)) return false;
  return a.opaque == b.opaque;
}

// Does the If-Match / If-None-Match value ("*" or 1#entity-tag, RFC 9110 §13.1.1) match `current`? The
// representation always exists here, so "*" matches. A malformed list matches nothing: for If-Match that fails the
// precondition, for If-None-Match the request proceeds, which is the safe outcome in both cases.
bool list_matches(std::string_view field, const std::optional<EntityTag>& current, Comparison how) {
  std::string_view s = field;
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  if (s == "*") return true;
  if (!current) return false;
  bool matched = false;
  for (;;) {
    // The list rule (RFC 9110 §5.6.1.2) lets a recipient skip empty elements.
    while (!s.empty() && (is_ows(s.front()) || s.front() == ',')) s.remove_prefix(1);
    if (s.empty()) return matched;
    std::optional<EntityTag> tag = take_entity_tag(s);
    if (!tag) return false;
    if (tags_match(*tag, *current, how)) matched = true;
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    if (!s.empty() && s.front() != ',') return false;
  }
}

bool is_get_or_head(std::string_view method) { return method == "GET" || method == "HEAD"; }

void append_hex(std::string& out, std::uint64_t value) {
  char buf[16];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, 16);
  (void)ec;  // 16 hex digits always fit a 64-bit value
  out.append(buf, end);
}

}  // namespace

std::string make_etag(std::uint64_t size_bytes, std::int64_t mtime_ns) {
  std::string etag = "\"";
  append_hex(etag, size_bytes);
  etag.push_back('-');
  append_hex(etag, static_cast<std::uint64_t>(mtime_ns));
  etag.push_back('"');
  return etag;
}

PreconditionResult evaluate_preconditions(std::string_view method, const Preconditions& pre, std::string_view etag,
                                          std::time_t last_modified) {
  const std::optional<EntityTag> current = parse_single_tag(etag);

  // Step 1: If-Match, strong comparison (RFC 9110 §13.1.1).
  if (!pre.if_match.empty()) {
    if (!list_matches(pre.if_match, current, Comparison::Strong)) return PreconditionResult::PreconditionFailed;
  } else if (!pre.if_unmodified_since.empty()) {
    // Step 2: If-Unmodified-Since, only without If-Match; an invalid date is ignored (RFC 9110 §13.1.4).
    const std::optional<std::time_t> since = parse_http_date(pre.if_unmodified_since);
    if (since && last_modified > *since) return PreconditionResult::PreconditionFailed;
  }

  // Step 3: If-None-Match, weak comparison (RFC 9110 §13.1.2).
  if (!pre.if_none_match.empty()) {
    if (list_matches(pre.if_none_match, current, Comparison::Weak)) {
      return is_get_or_head(method) ? PreconditionResult::NotModified : PreconditionResult::PreconditionFailed;
    }
  } else if (!pre.if_modified_since.empty() && is_get_or_head(method)) {
    // Step 4: If-Modified-Since, only without If-None-Match and only for GET/HEAD (RFC 9110 §13.1.3).
    const std::optional<std::time_t> since = parse_http_date(pre.if_modified_since);
    if (since && last_modified <= *since) return PreconditionResult::NotModified;
  }
  return PreconditionResult::Proceed;
}

bool if_range_allows(std::string_view if_range, std::string_view etag, std::time_t last_modified) {
  if (if_range.empty()) return true;
  std::string_view value = if_range;
  while (!value.empty() && is_ows(value.front())) value.remove_prefix(1);
  if (!value.empty() && (value.front() == '"' || value.substr(0, 2) == "W/")) {
    // An entity tag must match strongly (RFC 9110 §13.1.5), so a weak tag never does.
    const std::optional<EntityTag> given = parse_single_tag(value);
    const std::optional<EntityTag> current = parse_single_tag(etag);
    return given && current && tags_match(*given, *current, Comparison::Strong);
  }
  const std::optional<std::time_t> date = parse_http_date(value);
  return date && *date == last_modified;
}

}  // namespace spawnd::server
