// response.cpp — Response and its helpers (spawnd/response.h).
#include "common/http_status.h"
#include <spawnd/response.h>

#include <spawnd/html.h>

#include <cstdio>
#include <stdexcept>

#include "ascii.h"

namespace spawnd::sdk {

namespace {

void check_status(int status) {
  if (status < 100 || status > 999) throw std::invalid_argument("response status out of range 100..999");
}

void check_field(std::string_view name, std::string_view value) {
  if (!detail::is_token(name)) throw std::invalid_argument("response header name is not a token");
  // The SDK writes these itself; a second copy would make the response ambiguous.
  if (detail::iequals(name, "Status") || detail::iequals(name, "Content-Length"))
    throw std::invalid_argument("Status and Content-Length are set by the SDK, not by handlers");
  for (char c : value)
    if (c == '\r' || c == '\n' || c == '\0')
      throw std::invalid_argument("response header value contains CR, LF or NUL");
}

}  // namespace

Response::Response(int status) : status_(status) { check_status(status); }

Response& Response::set_status(int status) {
  check_status(status);
  status_ = status;
  return *this;
}

Response& Response::set_header(std::string_view name, std::string_view value) {
  check_field(name, value);
  bool replaced = false;
  for (auto it = headers_.begin(); it != headers_.end();) {
    if (!detail::iequals(it->first, name)) {
      ++it;
    } else if (!replaced) {
      it->second.assign(value);
      replaced = true;
      ++it;
    } else {
      it = headers_.erase(it);
    }
  }
  if (!replaced) headers_.emplace_back(std::string(name), std::string(value));
  return *this;
}

Response& Response::add_header(std::string_view name, std::string_view value) {
  check_field(name, value);
  headers_.emplace_back(std::string(name), std::string(value));
  return *this;
}

std::optional<std::string_view> Response::header(std::string_view name) const noexcept {
  for (const Field& f : headers_)
    if (detail::iequals(f.first, name)) return std::string_view(f.second);
  return std::nullopt;
}

Response Response::text(std::string body, int status) {
  Response r(status);
  r.headers_.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body_ = std::move(body);
  return r;
}

Response Response::html(std::string body, int status) {
  Response r(status);
  r.headers_.emplace_back("Content-Type", "text/html; charset=utf-8");
  r.body_ = std::move(body);
  return r;
}

Response Response::json_text(std::string json, int status) {
  Response r(status);
  r.headers_.emplace_back("Content-Type", "application/json");
  r.body_ = std::move(json);
  return r;
}

Response Response::redirect(std::string_view location, int status) {
  std::string body = "<!doctype html><title>";
  body += reason_phrase(status);
  body += "</title><a href=\"";
  append_html_escaped(body, location);
  body += "\">";
  append_html_escaped(body, location);
  body += "</a>\n";
  Response r = html(std::move(body), status);
  r.set_header("Location", location);
  return r;
}

Response Response::error(int status, std::string_view message) {
  char title[64];
  std::snprintf(title, sizeof title, "%d %s", status, reason_phrase(status));
  std::string body = "<!doctype html>\n<meta charset=\"utf-8\">\n<title>";
  body += title;
  body += "</title>\n<h1>";
  body += title;
  body += "</h1>\n";
  if (!message.empty()) {
    body += "<p>";
    append_html_escaped(body, message);
    body += "</p>\n";
  }
  return html(std::move(body), status);
}

Response Response::json_error(int status, std::string_view message) {
  char tail[32];
  std::snprintf(tail, sizeof tail, ",\"status\":%d}", status);
  std::string body = "{\"error\":";
  body += json_quote(message.empty() ? std::string_view(reason_phrase(status)) : message);
  body += tail;
  return json_text(std::move(body), status);
}

const char* reason_phrase(int status) noexcept { return ::spawnd::reason_phrase(status); }

std::string json_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += esc;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace spawnd::sdk
