// common/sys.h — thin EINTR-retrying syscall wrappers used by the server and the handler SDK.
//
// Each returns what the syscall returns (-1 with errno set on failure) but retries when a signal interrupted it.
// close() is deliberately absent: it must never be retried on EINTR (see fd.h).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <span>

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

// The most fds one message of ours carries (a Spawn's stdin, stdout and stderr).
inline constexpr std::size_t kMaxPassedFds = 3;

// Sends `bytes` as one message on socket `sock` (sendmsg(2) with `flags`), with `fds` attached by SCM_RIGHTS (none
// if empty; at most kMaxPassedFds). Retries on EINTR; returns what sendmsg returns (-1 with errno set on failure).
ssize_t send_with_fds(int sock, std::span<const char> bytes, std::span<const int> fds, int flags) noexcept;

// Receives one message into `buf` (recvmsg(2) with `flags` | MSG_CMSG_CLOEXEC), retrying on EINTR. Each fd that came
// with it is stored in `fds` (room for fds.size() <= kMaxPassedFds) and counted in `fd_count`; the caller owns
// them. Fds beyond that room are closed (by the kernel, or here) and reported as MSG_CTRUNC in `msg_flags`, which
// also carries MSG_TRUNC for a message longer than `buf`. Returns what recvmsg returns.
ssize_t recv_with_fds(int sock, std::span<char> buf, std::span<int> fds, int& fd_count, int& msg_flags,
                      int flags) noexcept;

// pidfd_open(2) and pidfd_send_signal(2) (no siginfo, no flags), as raw syscalls: glibc 2.36's <sys/pidfd.h>
// declares them without C linkage, so C++ cannot link against them (fixed in glibc 2.37). The pidfd is close-on-exec.
int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int sig) noexcept;

}  // namespace spawnd::sys
