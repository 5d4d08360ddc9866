#include "sys.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

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

ssize_t send_with_fds(int sock, std::span<const char> bytes, std::span<const int> fds, int flags) noexcept {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    // CMSG_FIRSTHDR(&msg), which is never null here (msg_controllen holds a header): the buffer's start.
    auto* c = reinterpret_cast<cmsghdr*>(control);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  return retry_eintr([&] { return ::sendmsg(sock, &msg, flags); });
}

ssize_t recv_with_fds(int sock, std::span<char> buf, std::span<int> fds, int& fd_count, int& msg_flags,
                      int flags) noexcept {
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
  fd_count = 0;
  msg_flags = 0;
  ssize_t n = retry_eintr([&] { return ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC); });
  if (n < 0) return n;
  msg_flags = msg.msg_flags;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (static_cast<std::size_t>(fd_count) < fds.size()) {
        fds[static_cast<std::size_t>(fd_count++)] = fd;
      } else {
        ::close(fd);
        msg_flags |= MSG_CTRUNC;
      }
    }
  }
  return n;
}

int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)); }

int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0U));
}

}  // namespace spawnd::sys
