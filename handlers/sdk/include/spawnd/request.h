// spawnd/request.h — Request: one HTTP request as a handler sees it, built from CGI meta-variables.
//
// A Request is built from a list of meta-variables (RFC 3875 §4.1) and the message body, not from `environ`
// directly, so every runtime can build one: the CGI runtime copies the environment, the FastCGI runtime passes
// the FCGI_PARAMS name-value pairs and the FCGI_STDIN bytes. Nothing is parsed when it is built: the query
// string, cookies and form body are parsed on first use and cached, so a handler pays only for what it reads.
//
// Accessors that parse client input throw HttpError(400) when that input is malformed or over a Limits cap; the
// runtime turns that into a 400 response, so a handler need not check. Returned string_views point into the
// Request and stay valid while it lives. Not thread-safe (one request, one thread).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spawnd/params.h>

namespace spawnd::sdk {

// Meta-variables as name/value pairs, e.g. {"REQUEST_METHOD", "GET"}. Order is kept; names are unique in practice
// (the first one wins on lookup).
using MetaVars = std::vector<std::pair<std::string, std::string>>;

class Request {
 public:
  // `body` is the message body already read (the CGI runtime reads exactly CONTENT_LENGTH bytes from stdin, RFC
  // 3875 §4.2, refusing more than limits.max_body_bytes). `limits` caps the parsers.
  explicit Request(MetaVars meta, std::string body = {}, Limits limits = {});

  // --- meta-variables (RFC 3875 §4.1)
  // The value of meta-variable `name`, or nullopt when it is not set. Exact, case-sensitive name.
  [[nodiscard]] std::optional<std::string_view> find_meta(std::string_view name) const noexcept;
  // The value of `name`, or "" when not set (RFC 3875 treats an empty and an unset variable alike for most).
  [[nodiscard]] std::string_view meta(std::string_view name) const noexcept;
  [[nodiscard]] const MetaVars& meta_vars() const noexcept { return meta_; }

  [[nodiscard]] std::string_view method() const noexcept { return meta("REQUEST_METHOD"); }  // "GET", as sent
  [[nodiscard]] std::string_view script_name() const noexcept { return meta("SCRIPT_NAME"); }  // "/cgi-bin/kv"
  [[nodiscard]] std::string_view path_info() const noexcept { return meta("PATH_INFO"); }      // "/key" or ""
  // SCRIPT_NAME + PATH_INFO: the decoded path of the request target, e.g. "/cgi-bin/kv/key".
  [[nodiscard]] std::string path() const;
  [[nodiscard]] std::string_view query_string() const noexcept { return meta("QUERY_STRING"); }  // raw, no '?'
  [[nodiscard]] std::string_view remote_addr() const noexcept { return meta("REMOTE_ADDR"); }
  [[nodiscard]] std::string_view content_type() const noexcept { return meta("CONTENT_TYPE"); }

  // --- query string, parsed as application/x-www-form-urlencoded. Throws HttpError(400) if malformed.
  [[nodiscard]] const Params& query() const;
  [[nodiscard]] std::optional<std::string_view> query(std::string_view name) const { return query().get(name); }

  // --- header fields, from the HTTP_* meta-variables plus CONTENT_TYPE and CONTENT_LENGTH (RFC 3875 §4.1.18).
  // Case-insensitive field name, e.g. header("accept-language") reads HTTP_ACCEPT_LANGUAGE. Note that CGI maps
  // '-' and '_' to the same name, so "X-A" and "X_A" are indistinguishable here.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view field_name) const;
  // All header fields, names rebuilt in canonical case ("HTTP_ACCEPT_LANGUAGE" -> "Accept-Language").
  [[nodiscard]] std::vector<std::pair<std::string, std::string_view>> headers() const;

  // --- cookies, from HTTP_COOKIE (lenient; never throws for bad syntax).
  [[nodiscard]] const Params& cookies() const;
  [[nodiscard]] std::optional<std::string_view> cookie(std::string_view name) const { return cookies().get(name); }

  // --- message body
  [[nodiscard]] std::string_view body() const noexcept { return body_; }
  // The form in the body: application/x-www-form-urlencoded or multipart/form-data (by CONTENT_TYPE); any other
  // content type gives an empty form. Throws HttpError(400) on malformed or over-limit input.
  [[nodiscard]] const Form& form() const;
  // The first form field named `name`, or nullopt.
  [[nodiscard]] std::optional<std::string_view> form_value(std::string_view name) const {
    return form().fields.get(name);
  }

  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }

 private:
  MetaVars meta_;
  std::string body_;
  Limits limits_;
  // Parsed on first use. mutable: parsing is an invisible cache fill, and a handler often holds const Request&.
  mutable std::optional<Params> query_;
  mutable std::optional<Params> cookies_;
  mutable std::optional<Form> form_;
};

}  // namespace spawnd::sdk
