#include "sys.h"

#include <sys/syscall.h>
#include <unistd.h>

namespace spawnd::sys {

ssize_t read(int fd, void* buf, size_t n) noexcept {
  return retry_eintr([&] { return ::read(fd, buf, n); });
}

ssize_t write(int fd, const void* buf, size_t n) noexcept {
  return retry_eintr([&] { return ::write(fd, buf, n); });
}

bool write_all(int fd, const void* buf, size_t n) noexcept {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool set_nonblocking(int fd, bool on) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return ::fcntl(fd, F_SETFL, flags) == 0;
}

int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)); }

int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0U));
}

}  // namespace spawnd::sys
