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

}  // namespace

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
