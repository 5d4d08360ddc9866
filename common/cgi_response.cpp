#include "common/cgi_response.h"

#include <cctype>
#include <charconv>

#include "common/ascii.h"

namespace spawnd {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 32 || c >= 127) return false;
    if (std::string_view("()<>@,;:\\\"/[]?={}").find(static_cast<char>(c)) != std::string_view::npos) return false;
  }
  return true;
}

// An absolute URI has a scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986 §3.1).
bool has_scheme(std::string_view s) {
  auto colon = s.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// RFC 3986 §2: unreserved / sub-delims / ":" / "@" (pchar without pct-encoded), and "/" and "?", which a query may
// also hold. A '%' is checked apart (it must start a pct-encoded triplet).
bool is_path_query_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~!$&'()*+,;=:@/?").find(c) != std::string_view::npos;
}

bool is_hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

bool is_local_path_query(std::string_view location) {
  // "//host/x" would be a network-path reference (RFC 3986 §4.2): an authority, not a local path.
  if (location.empty() || location[0] != '/' || location.substr(0, 2) == "//") return false;
  for (std::size_t i = 0; i < location.size(); ++i) {
    const char c = location[i];
    if (c == '%') {
      if (i + 2 >= location.size() || !is_hex_digit(location[i + 1]) || !is_hex_digit(location[i + 2])) return false;
      i += 2;
      continue;
    }
    // This also refuses '#' (a fragment), whitespace, CTLs, NUL and every byte >= 0x80.
    if (!is_path_query_char(c)) return false;
  }
  return true;
}

std::optional<int> parse_status_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  // "HTTP/1.1 200" is the shortest: 12 bytes.
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !is_digit(line[5]) || line[6] != '.' ||
      !is_digit(line[7]) || line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]))
    return std::nullopt;
  if (line.size() > 12 && line[12] != ' ') return std::nullopt;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

CgiResponseParser::State CgiResponseParser::fail(std::string why) {
  error_ = std::move(why);
  return state_ = State::Error;
}

CgiResponseParser::State CgiResponseParser::feed(std::string_view bytes) {
  if (state_ != State::NeedMore) return state_;
  buf_.append(bytes);
  // The block ends at the first empty line; scripts end lines with "\r\n" or a bare "\n" (both accepted, as by
  // Apache and Go).
  for (std::size_t i = scanned_; i < buf_.size(); ++i) {
    if (buf_[i] != '\n') continue;
    std::size_t line_length = i - line_begin_;
    bool is_empty_line = line_length == 0 || (line_length == 1 && buf_[line_begin_] == '\r');
    if (is_empty_line) {
      if (line_begin_ == 0) return fail("the script sent no header fields");
      body_start_ = i + 1;
      // The limit holds however the block arrived: in pieces, or whole in one read.
      if (body_start_ > max_header_bytes_)
        return fail("header block longer than " + std::to_string(max_header_bytes_) + " bytes");
      return parse_block(std::string_view(buf_).substr(0, body_start_));
    }
    line_begin_ = i + 1;
  }
  scanned_ = buf_.size();
  if (buf_.size() > max_header_bytes_) return fail("header block longer than " + std::to_string(max_header_bytes_) + " bytes");
  return State::NeedMore;
}

CgiResponseParser::State CgiResponseParser::parse_block(std::string_view block) {
  bool has_status = false, has_content_type = false;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t nl = block.find('\n', pos);
    std::string_view line = block.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return fail("header line without ':'");
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    // A CR or NUL inside a value could split the response we forward (RFC 9110 §5.5: reject or replace).
    if (value.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos)
      return fail("CR or NUL inside a header field value");
    if (!is_token(name)) return fail("invalid header field name");
    if (iequals(name, "Status")) {
      // Status: 3DIGIT SP reason-phrase (RFC 3875 §6.3.3)
      int code = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), code);
      if (ec != std::errc() || p != value.data() + 3 || code < 100 || code > 999)
        return fail("invalid Status value");
      // A 1xx is an interim response: relayed as the final one, it would leave the client (or a proxy) waiting
      // for another response on a kept-alive connection, and 101 would announce a protocol switch we never make.
      if (!is_final_status(code))
        return fail("Status " + std::to_string(code) + " is not a final status (only 200-599 are relayed)");
      head_.status = code;
      head_.reason = std::string(trim(value.substr(3)));
      has_status = true;
      continue;
    }
    if (iequals(name, "Content-Type")) has_content_type = true;
    if (iequals(name, "Location")) head_.location = std::string(value);
    if (iequals(name, "Content-Length")) {
      std::uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size()) return fail("invalid Content-Length");
      if (head_.content_length && *head_.content_length != n) return fail("conflicting Content-Length");
      head_.content_length = n;
      continue;  // the server writes the framing itself
    }
    head_.fields.emplace_back(std::string(name), std::string(value));
  }
  if (!head_.location.empty() && !has_status) {
    if (head_.location[0] == '/') {
      if (!is_local_path_query(head_.location))
        return fail("local-redirect Location is not a valid local path-query (RFC 3875 §6.2.2)");
      head_.kind = CgiResponseKind::LocalRedirect;
      return state_ = State::Done;
    }
    if (has_scheme(head_.location)) {
      head_.kind = CgiResponseKind::ClientRedirect;
      head_.status = 302;
      return state_ = State::Done;
    }
    return fail("Location is neither a local path nor an absolute URI");
  }
  if (!has_content_type && !has_status && head_.location.empty())
    return fail("no Content-Type, Status or Location");
  return state_ = State::Done;
}

}  // namespace spawnd
