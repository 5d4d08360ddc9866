#include "server/content_coding.h"

#include <algorithm>
#include <optional>

#include "common/ascii.h"
#include "common/error.h"

namespace spawnd::server {

namespace {

// A qvalue (RFC 9110 §12.4.2): "0" ["." 0*3DIGIT] / "1" ["." 0*3"0"], in thousandths; nullopt if malformed.
std::optional<int> parse_qvalue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
  int q = (s[0] - '0') * 1000;
  if (s.size() == 1) return q;
  if (s[1] != '.' || s.size() > 5) return std::nullopt;
  int scale = 100;
  for (char c : s.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    q += (c - '0') * scale;
    scale /= 10;
  }
  if (q > 1000) return std::nullopt;
  return q;
}

}  // namespace

const std::vector<ContentCoding>& known_content_codings() noexcept {
  static const std::vector<ContentCoding> kKnown{{"br", ".br"}, {"gzip", ".gz"}, {"zstd", ".zst"}};
  return kKnown;
}

std::vector<ContentCoding> parse_content_codings(const std::vector<std::string>& names) {
  std::vector<ContentCoding> out;
  for (const std::string& name : names) {
    const auto& known = known_content_codings();
    auto it = std::find_if(known.begin(), known.end(), [&](const ContentCoding& c) { return c.name == name; });
    if (it == known.end()) throw ConfigError("--precompressed " + name + ": expected br, gzip or zstd");
    if (std::none_of(out.begin(), out.end(), [&](const ContentCoding& c) { return c.name == name; }))
      out.push_back(*it);
  }
  return out;
}

int coding_quality(std::string_view accept_encoding, std::string_view coding) noexcept {
  int named = -1;
  int star = -1;
  while (!accept_encoding.empty()) {
    const std::size_t comma = accept_encoding.find(',');
    std::string_view member = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const std::size_t semi = member.find(';');
    const std::string_view name = trim_ows(member.substr(0, semi));
    if (name.empty()) continue;
    int q = 1000;
    bool is_valid = true;
    std::string_view params = semi == std::string_view::npos ? std::string_view() : member.substr(semi + 1);
    while (is_valid && !params.empty()) {
      const std::size_t next = params.find(';');
      const std::string_view param = trim_ows(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      const std::size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;  // not a weight; Accept-Encoding defines no other parameter
      if (!iequals(trim_ows(param.substr(0, eq)), "q")) continue;
      const std::optional<int> parsed = parse_qvalue(trim_ows(param.substr(eq + 1)));
      if (parsed) {
        q = *parsed;
      } else {
        is_valid = false;
      }
    }
    if (!is_valid) continue;
    if (iequals(name, coding) || (iequals(coding, "gzip") && iequals(name, "x-gzip"))) {
      named = std::max(named, q);
    } else if (name == "*") {
      star = std::max(star, q);
    }
  }
  if (named >= 0) return named;
  if (star >= 0) return star;
  return iequals(coding, "identity") ? 1000 : 0;
}

}  // namespace spawnd::server
