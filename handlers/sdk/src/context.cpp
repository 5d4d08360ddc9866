// context.cpp — Context (spawnd/context.h), everything but db(), which lives in context_db.cpp so that a handler
// that never calls it links no database code.
#include <spawnd/context.h>

#include <spawnd/handler.h>

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "log_line.h"

namespace spawnd::sdk {

Context::Context(const HandlerInfo& info, std::string name, DbConfig db_config)
    : info_(&info), name_(std::move(name)), db_config_(std::move(db_config)) {}

Context::~Context() = default;

void Context::close_db() noexcept {
  db_.reset();
  is_db_set_up_ = false;
}

Response Context::error(int status, std::string_view message) const {
  return info_->error_format == ErrorFormat::Json ? Response::json_error(status, message)
                                                  : Response::error(status, message);
}

void detail::vlog_line(std::string_view prefix, const char* fmt, va_list ap) noexcept {
  char line[1024];
  size_t len = prefix.size() < sizeof line - 2 ? prefix.size() : sizeof line - 2;
  std::memcpy(line, prefix.data(), len);
  int m = std::vsnprintf(line + len, sizeof line - len, fmt, ap);
  if (m > 0) len += static_cast<size_t>(m);
  if (len > sizeof line - 2) len = sizeof line - 2;  // truncated: keep room for the newline
  for (size_t i = prefix.size() < len ? prefix.size() : len; i < len; ++i)
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  line[len++] = '\n';
  [[maybe_unused]] ssize_t rc = ::write(STDERR_FILENO, line, len);
}

void Context::log(const char* fmt, ...) const {
  std::string prefix = "handler " + name_ + ": ";
  va_list ap;
  va_start(ap, fmt);
  detail::vlog_line(prefix, fmt, ap);
  va_end(ap);
}

ErrorClass Context::classify(const std::exception_ptr& e) const noexcept {
  ErrorClass c;
  if (classify_db_error_ != nullptr && classify_db_error_(e, c)) return c;
  try {
    std::rethrow_exception(e);
  } catch (const HttpError& h) {
    // Only error statuses: anything else is a handler bug, and a status outside 100..999 could not even be sent.
    if (h.status() >= 400 && h.status() <= 599) {
      c.status = h.status();
      c.log = c.status >= 500;
      c.message = h.what();
    } else {
      c.message = "the handler failed; the server log has details";
    }
  } catch (...) {
    c.status = 500;
    c.log = true;
    c.message = "the handler failed; the server log has details";
  }
  return c;
}

}  // namespace spawnd::sdk
