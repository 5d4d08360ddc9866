// request.cpp — Request (spawnd/request.h): meta-variable lookups and the lazily parsed views of client input.
#include <spawnd/request.h>

#include <spawnd/forms.h>
#include <spawnd/http_error.h>

#include "ascii.h"

namespace spawnd::sdk {

namespace {

[[noreturn]] void bad_request(FormError error) { throw HttpError(400, describe(error)); }

}  // namespace

Request::Request(MetaVars meta, std::string body, Limits limits)
    : meta_(std::move(meta)), body_(std::move(body)), limits_(limits) {}

std::optional<std::string_view> Request::find_meta(std::string_view name) const noexcept {
  for (const auto& [n, v] : meta_)
    if (n == name) return std::string_view(v);
  return std::nullopt;
}

std::string_view Request::meta(std::string_view name) const noexcept {
  auto v = find_meta(name);
  return v ? *v : std::string_view{};
}

std::string Request::path() const {
  std::string p(script_name());
  p.append(path_info());
  return p;
}

const Params& Request::query() const {
  if (!query_) {
    Params params;
    if (FormError e = parse_urlencoded(query_string(), params, limits_); e != FormError::None) bad_request(e);
    query_ = std::move(params);
  }
  return *query_;
}

std::optional<std::string_view> Request::header(std::string_view field_name) const {
  // RFC 3875 §4.1.18: HTTP_ + the field name upper-cased with '-' as '_'. Content-Type and Content-Length have
  // their own meta-variables and are not repeated as HTTP_* (§4.1.2, §4.1.3).
  if (detail::iequals(field_name, "Content-Type")) return find_meta("CONTENT_TYPE");
  if (detail::iequals(field_name, "Content-Length")) return find_meta("CONTENT_LENGTH");
  std::string name = "HTTP_";
  name.reserve(5 + field_name.size());
  for (char c : field_name) name.push_back(c == '-' ? '_' : detail::ascii_upper(c));
  return find_meta(name);
}

std::vector<std::pair<std::string, std::string_view>> Request::headers() const {
  std::vector<std::pair<std::string, std::string_view>> out;
  for (const auto& [n, v] : meta_) {
    std::string_view rest;
    if (n.starts_with("HTTP_")) {
      rest = std::string_view(n).substr(5);
    } else if ((n == "CONTENT_TYPE" || n == "CONTENT_LENGTH") && !v.empty()) {
      rest = n;
    } else {
      continue;
    }
    std::string name;
    name.reserve(rest.size());
    bool word_start = true;
    for (char c : rest) {
      if (c == '_') {
        name.push_back('-');
        word_start = true;
      } else {
        name.push_back(word_start ? detail::ascii_upper(c) : detail::ascii_lower(c));
        word_start = false;
      }
    }
    out.emplace_back(std::move(name), v);
  }
  return out;
}

const Params& Request::cookies() const {
  if (!cookies_) {
    Params params;
    parse_cookies(meta("HTTP_COOKIE"), params);
    cookies_ = std::move(params);
  }
  return *cookies_;
}

const Form& Request::form() const {
  if (!form_) {
    Form parsed;
    std::string type = media_type(content_type());
    if (type == "application/x-www-form-urlencoded") {
      if (FormError e = parse_urlencoded(body_, parsed.fields, limits_); e != FormError::None) bad_request(e);
    } else if (type == "multipart/form-data") {
      std::optional<std::string> boundary = multipart_boundary(content_type());
      if (!boundary) bad_request(FormError::MissingBoundary);
      if (FormError e = parse_multipart(body_, *boundary, parsed, limits_); e != FormError::None) bad_request(e);
    }
    form_ = std::move(parsed);
  }
  return *form_;
}

}  // namespace spawnd::sdk
