// context.cpp — Context (spawnd/context.h), everything but db(), which lives in context_db.cpp so that a handler
// that never calls it links no database code.
#include <spawnd/context.h>

#include <spawnd/handler.h>

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace spawnd::sdk {

Context::Context(const HandlerInfo& info, std::string name, DbConfig db_config)
    : info_(&info), name_(std::move(name)), db_config_(std::move(db_config)) {}

Context::~Context() = default;

void Context::close_db() noexcept { db_.reset(); }

Response Context::error(int status, std::string_view message) const {
  return info_->error_format == ErrorFormat::Json ? Response::json_error(status, message)
                                                  : Response::error(status, message);
}

void Context::log(const char* fmt, ...) const {
  char line[1024];
  int n = std::snprintf(line, sizeof line, "handler %s: ", name_.c_str());
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1;
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + len, sizeof line - len, fmt, ap);
  va_end(ap);
  if (m > 0) len += static_cast<size_t>(m);
  if (len > sizeof line - 2) len = sizeof line - 2;  // truncated: keep room for the newline
  // One line, one write: a message with embedded newlines would forge extra log lines, so flatten them.
  for (size_t i = 0; i < len; ++i)
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  line[len++] = '\n';
  [[maybe_unused]] ssize_t rc = ::write(STDERR_FILENO, line, len);
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
