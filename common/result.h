// common/result.h — Result<T>: a value or an error code, for runtime failures on the hot path.
//
// std::expected is not available with -std=c++20 on GCC 12, so this small stand-in carries either a T or a
// std::error_code (usually a std::system_category() errno). Startup and configuration errors throw spawnd::Error
// instead (see error.h); per-request and per-connection failures are values, never exceptions.
#pragma once

#include <cassert>
#include <cerrno>
#include <system_error>
#include <utility>
#include <variant>

namespace spawnd {

// Non-blocking I/O outcome, after nginx's NGX_OK/NGX_AGAIN: EAGAIN is not an error.
enum class Io { Done, Again, Eof, Error };

inline std::error_code errno_code(int err = errno) { return {err, std::system_category()}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design, like std::expected
  Result(std::error_code ec) : v_(ec) { assert(ec); }   // NOLINT

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  [[nodiscard]] std::error_code error() const { return ok() ? std::error_code{} : std::get<1>(v_); }

 private:
  std::variant<T, std::error_code> v_;
};

}  // namespace spawnd
