#include "server/http_parser.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <string>

#include "common/ascii.h"
#include "common/net_addr.h"

namespace spawnd::server {

namespace {
RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }

// Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP-literal in brackets or a reg-name of
// unreserved / pct-encoded / sub-delims characters, then optional digits after ':'. Empty is allowed (HTTP/1.0).
// The split is net::host_without_port's, the one site selection and SERVER_NAME use.
bool is_valid_host(std::string_view host) {
  const std::string_view name = net::host_without_port(host);
  std::string_view port = host.substr(name.size());  // "" or ':' and what follows it
  if (!port.empty()) port.remove_prefix(1);
  for (char c : port)
    if (c < '0' || c > '9') return false;
  if (!name.empty() && name.front() == '[') {
    if (name.back() != ']') return false;  // "[" alone ends with '['
    for (char c : name.substr(1, name.size() - 2))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    return true;
  }
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-._~%!$&'()*+,;=", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

// An absolute-form request-target (RFC 9112 §3.2.2) of the http or https scheme (RFC 9110 §4.2), made origin-form
// in place ("http://Example.org:8080/a?b" → "/a?b"; an empty path becomes "/"). Returns its authority
// ("Example.org:8080"), or nullopt for any other target: another scheme, no host, or userinfo (§4.2.4: rejected).
// Checks the transfer codings of a request whose framing llhttp found chunked (so chunked is the last coding, RFC
// 9112 §6.3): 0 if chunked is the only one; 501 if another is named, which spawnd does not implement (RFC 9112 §6.1:
// "SHOULD respond with 501"); 400 if chunked is applied more than once (§6.1: a sender MUST NOT). The codings are
// the members of every Transfer-Encoding field line in order (RFC 9110 §5.6.1 lists, empty members ignored), each
// a name with optional parameters.
int check_transfer_codings(const std::vector<std::pair<std::string, std::string>>& fields) {
  int chunked = 0;
  bool is_other = false;
  for (const auto& [name, value] : fields) {
    if (!iequals(name, "Transfer-Encoding")) continue;
    std::string_view list = value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view member = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      const std::string_view coding = trim_ows(member.substr(0, member.find(';')));
      if (coding.empty()) continue;
      if (iequals(coding, "chunked")) {
        ++chunked;
      } else {
        is_other = true;
      }
    }
  }
  if (is_other) return 501;
  return chunked > 1 ? 400 : 0;
}

std::optional<std::string> take_absolute_form(std::string& target) {
  std::size_t scheme_end = 0;
  if (target.size() > 7 && iequals(std::string_view(target).substr(0, 7), "http://")) {
    scheme_end = 7;
  } else if (target.size() > 8 && iequals(std::string_view(target).substr(0, 8), "https://")) {
    scheme_end = 8;
  } else {
    return std::nullopt;
  }
  const std::size_t path_start = std::min(target.find_first_of("/?#", scheme_end), target.size());
  std::string authority = target.substr(scheme_end, path_start - scheme_end);
  if (authority.empty() || authority.find('@') != std::string::npos || !is_valid_host(authority)) return std::nullopt;
  std::string origin = target.substr(path_start);
  if (origin.empty() || origin.front() != '/') origin.insert(0, "/");
  target = std::move(origin);
  return authority;
}
}  // namespace

std::optional<std::string_view> Request::field(std::string_view name) const noexcept {
  for (const auto& [k, v] : fields)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::string Request::protocol() const {
  return "HTTP/" + std::to_string(version_major) + "." + std::to_string(version_minor);
}

RequestParser::RequestParser(std::size_t max_header_bytes, std::uint64_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {
  llhttp_settings_init(&settings_);
  settings_.on_url = &RequestParser::on_url;
  settings_.on_url_complete = &RequestParser::on_url_complete;
  settings_.on_header_field = &RequestParser::on_header_field;
  settings_.on_header_value = &RequestParser::on_header_value;
  settings_.on_headers_complete = &RequestParser::on_headers_complete;
  settings_.on_body = &RequestParser::on_body;
  settings_.on_message_complete = &RequestParser::on_message_complete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

int RequestParser::fail(int status) {
  has_own_error_ = true;
  error_status_ = status;
  return HPE_USER;
}

int RequestParser::on_url(llhttp_t* p, const char* at, std::size_t n) {
  auto& s = self(p);
  // A request-target longer than the whole head allowance gets 414 (RFC 9112 §3), not 431.
  if (s.request_.target.size() + n > s.max_header_bytes_) return s.fail(414);
  s.request_.target.append(at, n);
  return 0;
}

int RequestParser::on_url_complete(llhttp_t* p) {
  self(p).is_url_done_ = true;
  return 0;
}

int RequestParser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  auto& s = self(p);
  s.head_bytes_ += n;
  if (s.is_in_value_ || s.request_.fields.empty()) s.head_bytes_ += 4;  // ": " and CRLF of a new field line
  if (s.request_.target.size() + s.head_bytes_ > s.max_header_bytes_)
    return s.fail(431);
  if (s.is_in_value_ || s.request_.fields.empty()) {
    s.request_.fields.emplace_back();
    s.is_in_value_ = false;
  }
  s.request_.fields.back().first.append(at, n);
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
  auto& s = self(p);
  s.head_bytes_ += n;
  if (s.request_.target.size() + s.head_bytes_ > s.max_header_bytes_)
    return s.fail(431);
  s.is_in_value_ = true;
  s.request_.fields.back().second.append(at, n);
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  auto& s = self(p);
  Request& r = s.request_;
  r.version_major = p->http_major;
  r.version_minor = p->http_minor;
  if (r.version_major != 1) return s.fail(505);
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  // Origin-form (RFC 9112 §3.2.1), "*" for OPTIONS, or absolute-form, which a server must accept too (§3.2.2): an
  // http or https URI, whose authority names the host in place of the Host field. It is made origin-form here, and
  // the Host field takes the authority (added if there was none: an HTTP/1.0 request), so that the site, SERVER_NAME
  // and HTTP_HOST all follow the target.
  // The asterisk-form "*" is for OPTIONS only (§3.2.4): any other method has no resource to act on.
  if (r.target == "*" && r.method != "OPTIONS") return s.fail(400);
  std::optional<std::string> authority;
  if (!r.target.empty() && r.target[0] != '/' && r.target != "*") {
    authority = take_absolute_form(r.target);
    if (!authority) return s.fail(400);
  }
  auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  // Field values lose optional whitespace at both ends (RFC 9110 §5.5); llhttp strips only the leading part.
  for (auto& f : r.fields) {
    auto& v = f.second;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  }
  r.is_chunked = (p->flags & F_CHUNKED) != 0;
  if (r.is_chunked) {
    if (const int status = check_transfer_codings(r.fields)) return s.fail(status);
  }
  if (p->flags & F_CONTENT_LENGTH) {
    r.content_length = p->content_length;
    if (p->content_length > s.max_body_bytes_) return s.fail(413);
  }
  r.has_body = r.is_chunked || (r.content_length && *r.content_length > 0);
  r.is_keep_alive = llhttp_should_keep_alive(p) != 0;
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing whatever it says; close the
  // connection after answering it, so that nothing can be smuggled behind its body. (llhttp keeps an HTTP/1.0
  // "Connection: keep-alive" alive.)
  if (r.version_minor == 0 && r.field("Transfer-Encoding")) r.is_keep_alive = false;
  if (auto e = r.field("Expect")) {
    if (iequals(*e, "100-continue")) {
      r.expects_continue = r.version_minor >= 1;
    } else {
      return s.fail(417);  // RFC 9110 §10.1.1
    }
  }
  // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, and for any request with more than one Host field
  // line (two of them let a proxy and this server disagree about which site is meant).
  std::size_t hosts = 0;
  for (const auto& f : r.fields) hosts += iequals(f.first, "Host") ? 1 : 0;
  if (hosts > 1 || (r.version_minor >= 1 && hosts == 0)) return s.fail(400);
  if (authority) {
    if (hosts == 0) r.fields.emplace_back("Host", std::string());
    for (auto& f : r.fields)
      if (iequals(f.first, "Host")) f.second = std::move(*authority);
  }
  // ... and for a Host field value that is not uri-host [ ":" port ] (it reaches CGI programs as SERVER_NAME).
  if (auto host = r.field("Host"); host && !is_valid_host(*host)) return s.fail(400);
  // "Connection: upgrade" with "Upgrade: h2c" or "websocket" makes llhttp stop after this message and pause with
  // HPE_PAUSED_UPGRADE, so the next request on the connection would fail. We implement no other protocol: the
  // request is an ordinary HTTP/1.1 one and the connection goes on as before (a server may ignore Upgrade, RFC
  // 9110 §7.8). curl --http2 and Java's HttpClient send the h2c form on the first request of a connection.
  p->upgrade = 0;
  s.is_head_done_ = true;
  return 0;
}

int RequestParser::on_body(llhttp_t* p, const char* at, std::size_t n) {
  auto& s = self(p);
  s.body_bytes_ += n;
  if (s.body_bytes_ > s.max_body_bytes_) return s.fail(413);
  s.body_out_->append(at, n);
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  auto& s = self(p);
  s.is_message_done_ = true;
  // Stop here: the next pipelined request is parsed only after this one is answered.
  return HPE_PAUSED;
}

RequestParser::Outcome RequestParser::feed(std::string_view data, std::string& body) {
  body_out_ = &body;
  llhttp_errno_t rc = llhttp_execute(&parser_, data.data(), data.size());
  body_out_ = nullptr;
  if (rc == HPE_OK) {
    // All consumed. A head still incomplete counts against the limit as a whole, including line ends and spaces.
    if (!is_head_done_) {
      raw_head_bytes_ += data.size();
      if (raw_head_bytes_ > max_header_bytes_) {
        fail(is_url_done_ ? 431 : 414);
        return {Status::Error, data.size()};
      }
    }
    return {Status::Ok, data.size()};
  }
  if (rc == HPE_PAUSED) {
    const char* pos = llhttp_get_error_pos(&parser_);
    return {Status::Ok, static_cast<std::size_t>(pos - data.data())};
  }
  if (!has_own_error_) {
    // llhttp's own verdict: a malformed request line or field, an invalid chunk, a smuggling attempt.
    error_status_ = 400;
  }
  return {Status::Error, data.size()};
}

void RequestParser::resume_next() {
  request_ = Request{};
  head_bytes_ = 0;
  raw_head_bytes_ = 0;
  body_bytes_ = 0;
  is_url_done_ = false;
  is_in_value_ = false;
  is_head_done_ = false;
  is_message_done_ = false;
  has_own_error_ = false;
  llhttp_resume(&parser_);
}

}  // namespace spawnd::server
