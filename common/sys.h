// common/sys.h — thin EINTR-retrying syscall wrappers used by the server and the handler SDK.
//
// Each returns what the syscall returns (-1 with errno set on failure) but retries when a signal interrupted it.
// close() is deliberately absent: it must never be retried on EINTR (see fd.h).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>

namespace spawnd::sys {

template <typename F>
auto retry_eintr(F f) {
  for (;;) {
    auto rc = f();
    if (rc >= 0 || errno != EINTR) return rc;
  }
}

ssize_t read(int fd, void* buf, size_t n) noexcept;
ssize_t write(int fd, const void* buf, size_t n) noexcept;

// Writes all `n` bytes to a blocking fd. Returns false (errno set) on error.
bool write_all(int fd, const void* buf, size_t n) noexcept;

// Sets or clears O_NONBLOCK. Returns false (errno set) on error.
bool set_nonblocking(int fd, bool on = true) noexcept;

// pidfd_open(2) and pidfd_send_signal(2) (no siginfo, no flags), as raw syscalls: glibc 2.36's <sys/pidfd.h>
// declares them without C linkage, so C++ cannot link against them (fixed in glibc 2.37). The pidfd is close-on-exec.
int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int sig) noexcept;

}  // namespace spawnd::sys
