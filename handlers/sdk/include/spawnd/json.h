// spawnd/json.h — JSON responses and request bodies with nlohmann::json.
//
// Kept apart from spawnd/handler.h so that a handler that does not speak JSON does not compile the nlohmann
// header. Parse failures are client errors: parse_json_body throws HttpError(400), which the runtime answers in
// the handler's error format (use ErrorFormat::Json for a JSON API, see spawnd/handler.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <spawnd/http_error.h>
#include <spawnd/request.h>
#include <spawnd/response.h>

namespace spawnd::sdk {

// `value` serialised compactly as application/json. Strings that are not valid UTF-8 get U+FFFD in place of
// bad bytes rather than throwing (nlohmann error_handler_t::replace).
[[nodiscard]] inline Response json_response(const nlohmann::json& value, int status = 200) {
  return Response::json_text(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), status);
}

// The request body parsed as JSON (RFC 8259). Throws HttpError(400, "invalid JSON: ...") if it does not parse,
// including an empty body.
[[nodiscard]] inline nlohmann::json parse_json_body(const Request& req) {
  nlohmann::json value = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) throw HttpError(400, "invalid JSON in request body");
  return value;
}

}  // namespace spawnd::sdk
