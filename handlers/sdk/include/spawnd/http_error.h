// spawnd/http_error.h — HttpError, the exception a handler (or the SDK on its behalf) throws to answer with a
// status code instead of a normal response.
//
// The runtime catches it around the handler call and turns it into an error response in the handler's error
// format (HTML or JSON, see HandlerInfo::error_format), with what() as the message. The SDK itself throws it for
// bad client input: a malformed query string, urlencoded form body or multipart body becomes HttpError(400).
// Statuses 5xx are also logged on stderr; 4xx are the client's fault and are not.
#pragma once

#include <stdexcept>
#include <string>

namespace spawnd::sdk {

class HttpError : public std::runtime_error {
 public:
  // `status` is an HTTP status code (RFC 9110 §15), 400..599; `message` is shown to the client, so it must not
  // carry secrets. It is escaped when rendered.
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}

  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};

}  // namespace spawnd::sdk
