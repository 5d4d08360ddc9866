// common/fd.h — RAII ownership of file descriptors.
//
// Fd is move-only; -1 means empty and a moved-from Fd is empty. The destructor closes without retrying on EINTR
// (Linux always releases the descriptor, so a retry could close someone else's fd). Every fd in spawnd is created
// with O_CLOEXEC / SOCK_CLOEXEC so that nothing leaks into child processes; Fd does not enforce that, its creators do.
#pragma once

#include <unistd.h>

#include <utility>

namespace spawnd {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Gives up ownership; the caller must close the returned fd.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the current fd (if any) and takes ownership of `fd`. Don't retry close on EINTR: see the header comment.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace spawnd
