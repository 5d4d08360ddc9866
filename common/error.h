// common/error.h — spawnd::Error, the exception for start-up and configuration failures.
//
// Thrown for bad flags, a socket that will not bind, a root directory that does not exist, a database that will not
// open. It is caught once, in main(), which prints what() on one line and exits non-zero. Never thrown per request.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace spawnd {

class Error : public std::system_error {
 public:
  // `what` says what was being done and to which path/address, e.g. "bind 127.0.0.1:8080".
  Error(int err, const std::string& what) : std::system_error(err, std::system_category(), what) {}
  explicit Error(const std::string& what) : std::system_error(EINVAL, std::system_category(), what) {}
};

// A start-up failure that is the configuration's fault rather than the system's, found only once spawnd looks at
// what it was given (e.g. a handler shared object that does not load or speaks another ABI version). main() exits
// with status 2 for it, as for a bad flag, instead of 1.
// Its what() is the message alone: there is no errno to append.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(what), message_(what) {}
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace spawnd
