// fork_server_runtime.cpp — the fork-server runtime: the handler executable, started once by `spawnd --mode fork`,
// forks one fresh child per request; the child runs exactly the CGI runtime (run_cgi). The protocol with spawnd is
// common/fork_protocol.h: Ready once, then Spawn in / Spawned (with the child's pidfd) + Exited out, over the
// SOCK_SEQPACKET control socket.
//
// What may be shared across fork(): code, static data, this file's buffers. What must not: an SQLite connection
// (it would be shared by every child, with its locks and WAL index mapping), threads (only the forking thread
// survives in the child, and a lock held by another thread stays held forever). So the fork server never calls the
// handler, never builds a Context and never opens the database: each child builds its own Context in run_cgi, and
// ctx.db() opens the database there, per child, exactly as under CGI.
//
// With --prefork N (kPreforkEnv), children are forked ahead of need and wait, each with its own Context, warmed by
// HandlerInfo::warm_up after the fork (its own SQLite connection), for the one Spawn the fork server forwards to
// it (the pool rules are in common/fork_protocol.h). The request then pays neither fork() nor the database's open.
//
// Single-threaded, blocking: one poll() on the control socket and a signalfd for SIGCHLD, with a timeout for the
// oldest waiting child's retirement. Children never make the fork server wait: they are reaped with
// waitpid(WNOHANG) when the signalfd says one exited. A bad message is logged and refused (Spawned with -EINVAL);
// only a broken control socket ends the fork server.
#include <spawnd/runtime.h>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "common/fork_protocol.h"
#include "common/sys.h"
#include "fork_spawn_message.h"
#include "log_line.h"

extern char** environ;

namespace spawnd::sdk {

namespace {

namespace fp = spawnd::fork_protocol;

constexpr int kStdioFds = 3;
// The most Spawns served from one wakeup before the pool is topped up again.
constexpr int kMaxSpawnsPerWakeup = 64;
// The heap a pre-forked child maps while it waits, for its request's allocations (below glibc's trim and mmap
// thresholds, 128 KiB, so that free() keeps it).
constexpr size_t kHeapWarmBytes = 16 * 1024;

// Writes one byte in each page of [p, p + size): after a fork(), the write that copies a page shared copy-on-write
// (a page fault; 12-15 µs on a virtual machine with shadow page tables), or maps a fresh zero page.
void touch_pages(void* p, size_t size) noexcept {
  auto* bytes = static_cast<volatile char*>(p);
  for (size_t i = 0; i < size; i += 4096) bytes[i] = bytes[i];
}

// Writes this thread's control block: the kernel writes its rseq area (glibc registers one in the block) each time
// the thread is scheduled back in, so after a fork() the first wake-up would copy that page on the way to the
// syscall that woke it. errno (static TLS, beside the block) covers the block where rseq is not registered.
void touch_thread_block() noexcept {
  touch_pages(&errno, 1);
#if __has_builtin(__builtin_thread_pointer)
  if (__rseq_size > 0) {
    // An atomic add of 0: a write that cannot undo a concurrent update by the kernel (there is none while this
    // thread runs user code, but the field is the kernel's).
    auto* cpu_id_start = reinterpret_cast<unsigned*>(static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset);
    __atomic_fetch_add(cpu_id_start, 0u, __ATOMIC_RELAXED);
  }
#endif
}

// Writes `Bytes` of stack below the caller's frame: the pages the caller's next calls will use.
template <size_t Bytes>
[[gnu::noinline]] void touch_stack_below() noexcept {
  char pages[Bytes];
  for (size_t i = 0; i < Bytes; i += 4096) pages[i] = 0;
  asm volatile("" : : "r"(pages) : "memory");  // the writes are kept: the array counts as read
}

std::int64_t monotonic_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Which file is at a path: (device, inode), or (0, 0) if none (or no path). Two equal ids name the same file.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

FileId file_id(const std::string& path) noexcept {
  struct stat st{};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino};
}

// One line on stderr, "handler NAME: fork server: <message>" (detail::vlog_line, as Context::log).
void log_line(const std::string& name, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void log_line(const std::string& name, const char* fmt, ...) {
  std::string prefix = "handler " + name + ": fork server: ";
  va_list ap;
  va_start(ap, fmt);
  spawnd::sdk::detail::vlog_line(prefix, fmt, ap);
  va_end(ap);
}

// The three fds of one Spawn message; closes whatever it holds.
struct StdioFds {
  int fd[kStdioFds] = {-1, -1, -1};
  int count = 0;
  StdioFds() = default;
  StdioFds(const StdioFds&) = delete;
  StdioFds& operator=(const StdioFds&) = delete;
  ~StdioFds() { close_all(); }
  void close_all() noexcept {
    for (int i = 0; i < count; ++i) ::close(fd[i]);
    count = 0;
  }
};

class ForkServer {
 public:
  ForkServer(const HandlerInfo& info, const char* argv0, int control_fd)
      : info_(info), argv0_(argv0), name_(handler_name(info, argv0)), control_fd_(control_fd) {}

  int run();

 private:
  [[nodiscard]] bool set_up();
  // The poll loop; returns run()'s exit code.
  [[nodiscard]] int serve();
  // Receives and serves one message, if one is queued. Returns 1 when it served one, 0 when none was queued, -1
  // when the control socket is closed or broken.
  [[nodiscard]] int on_control_readable();
  // Reaps every exited child and reports each. Returns false if the control socket broke.
  [[nodiscard]] bool on_sigchld();
  // Sends one message; `fd`, if not -1, goes with it by SCM_RIGHTS (a Spawned's pidfd). False if the socket broke.
  [[nodiscard]] bool send(fp::MessageType type, std::uint64_t token, std::int32_t pid, std::int32_t status,
                          int fd = -1);
  // Records the child `pid` forked for Spawn `token` and returns the pidfd that goes with its Spawned; or -1 if no
  // pidfd could be had: the child is then SIGKILLed (and reaped and reported like any other).
  [[nodiscard]] int take_pidfd(pid_t pid, std::uint64_t token);
  [[noreturn]] void run_child(const StdioFds& fds) noexcept;

  // A pre-forked child waiting for its Spawn.
  struct Waiting {
    pid_t pid = -1;
    int pidfd = -1;              // taken right after the fork; goes with its Spawned
    int socket = -1;             // our end of its SOCK_SEQPACKET pair
    std::int64_t forked_ms = 0;  // CLOCK_MONOTONIC
    FileId db;                   // the file at SPAWND_DB when it was forked
  };
  // Forwards the Spawn in buffer_ (`length` bytes, `fds`) to a waiting child. Returns false if no child took it
  // (none waiting, or none alive and on the current database): the caller forks one. On true, `is_sent` says
  // whether the Spawned reached spawnd.
  [[nodiscard]] bool hand_off(std::uint64_t token, size_t length, StdioFds& fds, bool& is_sent);
  // Forks waiting children until the pool holds target_.
  void top_up();
  // Copies now, while no request waits, the pages shared with the children forked since that the next Spawn would
  // write: the head of buffer_ (as long as the last message), envp_, this thread's control block, the stack of the
  // receive path. The fork server calls it after its forks; a waiting child, for the Spawn it will receive.
  void touch_spawn_pages() noexcept;
  // Retires the waiting children that waited kPreforkIdleMs, tops the pool up unless the refill waits for children
  // handed requests (kPreforkRefillDelayMs), and returns poll()'s timeout: until the next retirement or the deferred
  // refill is due, or -1 if neither is.
  [[nodiscard]] int retire_idle();
  // SIGKILLs an unused waiting child (its exit is reaped silently) and closes our fds of it.
  void retire(Waiting& child) noexcept;
  [[noreturn]] void run_waiting_child(int socket) noexcept;

  const HandlerInfo& info_;
  const char* argv0_;
  std::string name_;
  int control_fd_;
  int signal_fd_ = -1;
  // Allocated once and reused: the message (header + environment block), and the child's environ array, whose
  // pointers point into buffer_. The child inherits both with the fork, so it allocates nothing to get its
  // environment.
  std::vector<char> buffer_;
  std::vector<char*> envp_;
  // Our children that are not reaped yet and the Spawn token of each, for their Exited. A pid is unique here: it
  // stays ours until we reap it. Adopted orphans are not listed (token 0).
  std::vector<std::pair<pid_t, std::uint64_t>> children_;

  // The pool (empty without --prefork): oldest first, so a Spawn takes the back and the front ages out.
  std::size_t prefork_max_ = 0;  // kPreforkEnv
  std::size_t target_ = 0;       // between kPreforkMinimum and prefork_max_: what top_up() keeps
  std::string db_path_;          // SPAWND_DB in our environment: what the waiting children open
  std::vector<Waiting> pool_;
  std::vector<pid_t> retired_;   // waiting children we killed and have not reaped: not reported to spawnd
  bool is_fork_failing_ = false;  // the last pre-fork failed: no retry until the next Spawn
  std::int64_t last_hand_off_ms_ = 0;  // monotonic_ms() of the last Spawn handed to a waiting child
  size_t last_message_bytes_ = 1;      // the length of the last message received: what touch_spawn_pages() touches
};

bool ForkServer::set_up() {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(control_fd_, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
    log_line(name_, "fd %d (%s=%d) is not a SOCK_SEQPACKET socket; start handlers in this mode with spawnd --mode fork",
             control_fd_, fp::kForkServerEnv, control_fd_);
    return false;
  }
  // Blocking sends: spawnd reads its end from its event loop, so a full socket buffer only means "wait a moment",
  // and a message must never be dropped. (spawnd may have made the pair non-blocking before handing us our end.)
  // CLOEXEC as every fd: nothing is exec'd here, but a handler might exec in a child, which closes it anyway.
  if (!sys::set_nonblocking(control_fd_, false) || ::fcntl(control_fd_, F_SETFD, FD_CLOEXEC) != 0) {
    log_line(name_, "fcntl(%d): %s", control_fd_, std::strerror(errno));
    return false;
  }
  // fds 0, 1 and 2 open (spawnd gives /dev/null, /dev/null, its stderr), so that the fds received with a Spawn are
  // always >= 3 and dup2() onto 0..2 in the child can never overwrite one of them.
  for (int fd = 0; fd < kStdioFds; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int null_fd = ::open("/dev/null", O_RDWR);  // the lowest free number: `fd`
      if (null_fd != fd) {
        log_line(name_, "cannot open /dev/null as fd %d", fd);
        return false;
      }
    }
  }

  // Signals. Dispositions that survive exec are SIG_IGN and SIG_DFL only, so any SIG_IGN here was inherited from
  // whoever started us: put it back to default, since the children must start with default dispositions, and
  // SIGCHLD ignored would even make the kernel reap them before we can report their status. Handlers installed by
  // this process's own start-up (a sanitizer runtime, say) are kept: a CGI process has them too. The fork server
  // installs none, so its children inherit default dispositions and need no per-request loop over every signal.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &old) != 0) continue;
    if (old.sa_handler == SIG_IGN) {
      struct sigaction def {};
      def.sa_handler = SIG_DFL;
      ::sigemptyset(&def.sa_mask);
      ::sigaction(sig, &def, nullptr);
    }
  }
  // SIGCHLD only through the signalfd: blocked, so it never interrupts anything, and nothing is lost while we are
  // busy (a pending SIGCHLD stays readable). Several exits may merge into one SIGCHLD; on_sigchld reaps them all.
  sigset_t chld;
  ::sigemptyset(&chld);
  ::sigaddset(&chld, SIGCHLD);
  if (::sigprocmask(SIG_BLOCK, &chld, nullptr) != 0) {
    log_line(name_, "sigprocmask: %s", std::strerror(errno));
    return false;
  }
  signal_fd_ = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    log_line(name_, "signalfd: %s", std::strerror(errno));
    return false;
  }
  // The subreaper of our children's descendants: what a handler leaves behind (a background job in its group,
  // killed with it on a timeout or not) is re-parented to us, and on_sigchld's waitpid(-1) reaps it like our own
  // children. Otherwise it would go to spawnd, which reaps only pids it knows. Not inherited by the children.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) log_line(name_, "PR_SET_CHILD_SUBREAPER: %s", std::strerror(errno));

  // The cheap warm-up: this process's own buffers, so that serving a request allocates nothing in the fork server.
  // Nothing of the handler runs here; handler code may open the database, and that must happen per child.
  buffer_.resize(fp::kMaxMessageBytes);
  envp_.reserve(64);
  children_.reserve(256);

  if (const char* prefork = std::getenv(fp::kPreforkEnv); prefork != nullptr && *prefork != '\0') {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(prefork, &end, 10);
    if (*end != '\0' || n > 1024) {
      log_line(name_, "%s=%s is not a number of children from 0 to 1024", fp::kPreforkEnv, prefork);
      return false;
    }
    prefork_max_ = static_cast<std::size_t>(n);
  }
  target_ = std::min(prefork_max_, fp::kPreforkMinimum);
  if (const char* db = std::getenv("SPAWND_DB")) db_path_ = db;
  pool_.reserve(prefork_max_);
  return true;
}

bool ForkServer::send(fp::MessageType type, std::uint64_t token, std::int32_t pid, std::int32_t status, int fd) {
  fp::ForkMessageHeader header{};
  header.type = type;
  header.token = token;
  header.pid = pid;
  header.status = status;
  const int attached[1] = {fd};
  // MSG_NOSIGNAL: if spawnd is gone, EPIPE here, not a SIGPIPE that kills the fork server with children in flight.
  ssize_t n = sys::send_with_fds(control_fd_, {reinterpret_cast<const char*>(&header), sizeof header},
                                 std::span<const int>(attached, fd >= 0 ? 1 : 0), MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(sizeof header)) return true;
  if (n < 0 && errno != EPIPE && errno != ECONNRESET) log_line(name_, "send: %s", std::strerror(errno));
  return false;
}

int ForkServer::on_control_readable() {
  fp::ForkMessageHeader header{};
  // Every fd that arrived is owned by `fds` before anything else is looked at, so that each path closes them; a
  // fourth is closed at once and the message refused as if it had not fit (MSG_CTRUNC). MSG_CMSG_CLOEXEC: the fds
  // are never inherited by accident; the child dup2()s them onto 0..2 (which clears it). MSG_DONTWAIT: run() calls
  // this until the queue is empty.
  StdioFds fds;
  int msg_flags = 0;
  ssize_t n = sys::recv_with_fds(control_fd_, buffer_, fds.fd, fds.count, msg_flags, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN) return 0;
    log_line(name_, "recvmsg: %s", std::strerror(errno));
    return -1;
  }
  // 0 bytes: spawnd closed its end (a SEQPACKET peer never sends an empty message in this protocol).
  if (n == 0 && fds.count == 0) return -1;

  const auto length = static_cast<size_t>(n);
  last_message_bytes_ = length;
  if (length < sizeof header) {
    log_line(name_, "ignoring a %zu-byte message (shorter than a header)", length);
    return 1;  // no token to answer to; the fds close with `fds`
  }
  std::memcpy(&header, buffer_.data(), sizeof header);
  const ReceivedMessageInfo received{.is_truncated = (msg_flags & MSG_TRUNC) != 0,
                                     .has_extra_fds = (msg_flags & MSG_CTRUNC) != 0,
                                     .fd_count = fds.count};
  if (const char* problem = check_spawn_message(std::span<char>(buffer_.data(), length), received, envp_)) {
    log_line(name_, "refusing message (type %u, token %llu, %zu bytes, %d fds): %s",
             static_cast<unsigned>(header.type), static_cast<unsigned long long>(header.token), length, fds.count,
             problem);
    fds.close_all();
    return send(fp::MessageType::Spawned, header.token, -EINVAL, 0) ? 1 : -1;
  }

  is_fork_failing_ = false;  // a request: worth trying to pre-fork again
  if (bool is_sent = false; hand_off(header.token, length, fds, is_sent)) return is_sent ? 1 : -1;
  // No child was waiting: this request pays for its fork, and the pool grows so that the next one need not.
  if (target_ < prefork_max_) ++target_;

  pid_t pid = ::fork();
  if (pid == 0) run_child(fds);
  const int fork_errno = errno;
  int pidfd = -1;
  if (pid > 0) {
    // The parent sets the child's group too (the classic job-control race): once spawnd hears of the child, a
    // kill(-pid) must reach the group even if the child has not run yet. ESRCH after a fast exit is fine.
    ::setpgid(pid, pid);
    pidfd = take_pidfd(pid, header.token);
  }
  // Our copies of the child's stdio go now: the child's stdout must reach EOF when the child exits.
  fds.close_all();
  if (pid < 0) {
    log_line(name_, "fork: %s", std::strerror(fork_errno));
    return send(fp::MessageType::Spawned, header.token, -fork_errno, 0) ? 1 : -1;
  }
  // Without a pidfd: the pid alone, which tells spawnd that a child was forked but cannot be watched.
  const bool is_sent = send(fp::MessageType::Spawned, header.token, pid, 0, pidfd);
  if (pidfd >= 0) ::close(pidfd);  // spawnd has its own copy now
  touch_spawn_pages();  // while the child runs: the next Spawn's pages, copied since this fork
  return is_sent ? 1 : -1;
}

bool ForkServer::hand_off(std::uint64_t token, size_t length, StdioFds& fds, bool& is_sent) {
  if (pool_.empty()) return false;
  // One stat per request: a database deleted and recreated (or replaced by rename) since a child was forked makes
  // that child's connection stale, and it is retired unused. (The child checks again, for a replacement between
  // this stat and its open: run_waiting_child.)
  const FileId db = file_id(db_path_);
  while (!pool_.empty()) {
    Waiting child = pool_.back();
    pool_.pop_back();
    if (!(child.db == db)) {
      retire(child);
      continue;
    }
    // Its own group before it can read the request (see the header of common/fork_protocol.h); ESRCH if it died
    // waiting, then the send fails too.
    ::setpgid(child.pid, child.pid);
    const ssize_t n = sys::send_with_fds(child.socket, {buffer_.data(), length},
                                         std::span<const int>(fds.fd, static_cast<size_t>(fds.count)), MSG_NOSIGNAL);
    ::close(child.socket);
    if (n != static_cast<ssize_t>(length)) {
      // EPIPE/ECONNREFUSED: it died waiting (its exit is reaped by on_sigchld); anything else: it cannot be used.
      if (errno != EPIPE && errno != ECONNREFUSED && errno != ECONNRESET)
        log_line(name_, "send to waiting child %d: %s", static_cast<int>(child.pid), std::strerror(errno));
      child.socket = -1;
      retire(child);
      continue;
    }
    children_.emplace_back(child.pid, token);
    last_hand_off_ms_ = monotonic_ms();
    // Our copies of the child's stdio go now: the child's stdout must reach EOF when the child exits.
    fds.close_all();
    is_sent = send(fp::MessageType::Spawned, token, child.pid, 0, child.pidfd);
    ::close(child.pidfd);
    return true;
  }
  return false;
}

void ForkServer::retire(Waiting& child) noexcept {
  // SIGKILL through the pidfd: the number is still this child (we have not reaped it). It holds no request, and a
  // killed process holds no SQLite lock (POSIX locks die with it; the WAL stays consistent).
  sys::pidfd_send_signal(child.pidfd, SIGKILL);
  retired_.push_back(child.pid);
  ::close(child.pidfd);
  if (child.socket >= 0) ::close(child.socket);
}

void ForkServer::touch_spawn_pages() noexcept {
  touch_pages(buffer_.data(), last_message_bytes_);  // the next message is about as long as the last
  envp_.assign(envp_.capacity(), nullptr);
  touch_thread_block();
  touch_stack_below<4096>();  // the page below, where on_control_readable's calls go (serve() calls both)
}

void ForkServer::top_up() {
  const std::size_t size_before = pool_.size();
  while (pool_.size() < target_ && !is_fork_failing_) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      log_line(name_, "socketpair: %s", std::strerror(errno));
      is_fork_failing_ = true;
      break;
    }
    Waiting child;
    child.db = file_id(db_path_);  // before the fork: the child opens this file or a newer one
    child.forked_ms = monotonic_ms();
    child.pid = ::fork();
    if (child.pid == 0) {
      ::close(pair[0]);
      run_waiting_child(pair[1]);
    }
    const int fork_errno = errno;
    ::close(pair[1]);
    if (child.pid > 0) child.pidfd = sys::pidfd_open(child.pid);
    if (child.pid < 0 || child.pidfd < 0) {
      log_line(name_, "pre-fork: %s: %s", child.pid < 0 ? "fork" : "pidfd_open",
               std::strerror(child.pid < 0 ? fork_errno : errno));
      if (child.pid > 0) {
        ::kill(child.pid, SIGKILL);  // our unreaped child: the number is still it
        retired_.push_back(child.pid);
      }
      ::close(pair[0]);
      is_fork_failing_ = true;  // EAGAIN/ENOMEM/EMFILE: no retry loop; the next Spawn tries again
      break;
    }
    child.socket = pair[0];
    pool_.push_back(child);
  }
  // The pages the fork server writes per Spawn are its new children's too: copied now, not on the next request.
  if (pool_.size() > size_before) touch_spawn_pages();
}

int ForkServer::retire_idle() {
  const std::int64_t now = monotonic_ms();
  while (!pool_.empty() && now - pool_.front().forked_ms >= fp::kPreforkIdleMs) {
    retire(pool_.front());
    pool_.erase(pool_.begin());
    // Fewer requests than children: the pool shrinks (to the minimum, whose child top_up() then replaces).
    if (target_ > std::min(prefork_max_, fp::kPreforkMinimum)) --target_;
  }
  // The refill waits while children handed requests run, for at most kPreforkRefillDelayMs (fork_protocol.h).
  const std::int64_t refill_ms = last_hand_off_ms_ + fp::kPreforkRefillDelayMs;
  const bool is_refill_due = children_.empty() || now >= refill_ms;
  if (is_refill_due) top_up();
  std::int64_t timeout_ms = -1;
  if (!pool_.empty()) timeout_ms = std::max<std::int64_t>(0, pool_.front().forked_ms + fp::kPreforkIdleMs - now);
  if (!is_refill_due && (timeout_ms < 0 || refill_ms - now < timeout_ms)) timeout_ms = refill_ms - now;
  return static_cast<int>(timeout_ms);
}

void ForkServer::run_waiting_child(int socket) noexcept {
  // Only its socket is kept, as kControlFd (replacing this process's copy of the control socket, which it must not
  // hold: spawnd's EOF on it would never come); 0..2 are the fork server's (/dev/null, /dev/null, spawnd's stderr)
  // until the request's replace them. Still in the fork server's process group (see fork_protocol.h).
  if (socket != fp::kControlFd && ::dup2(socket, fp::kControlFd) < 0) ::_exit(127);
  ::closefrom(fp::kControlFd + 1);
  // SIGTERM and the rest are default here already (set_up); SIGCHLD stays blocked until the request: it has no
  // children yet. The Context and the handler's warm-up: its own connection, opened after the fork.
  auto ctx = std::make_unique<Context>(info_, name_, db_config_from({}));
  FileId opened;
  if (info_.warm_up != nullptr) {
    const FileId before = file_id(ctx->db_config().path);
    try {
      info_.warm_up(*ctx);
    } catch (const std::exception& e) {
      log_line(name_, "pre-forked child %d: warm-up: %s", static_cast<int>(::getpid()), e.what());
      ctx->close_db();
    } catch (...) {
      ctx->close_db();
    }
    // The file we opened is `before` only if it was still there after the open (it may have been replaced between).
    opened = file_id(ctx->db_config().path);
    if (!(opened == before)) ctx->close_db();
  }
  // The page faults a request would otherwise take, taken now, while it waits (each page the fork server wrote
  // before the fork is copy-on-write here, and each fresh page is mapped at its first write): the pages the Spawn
  // is received into (touch_spawn_pages, as the fork server's), the stack below this frame where run_cgi's calls go,
  // the next pages of the heap, and the code and data of a response's rendering (the head's formatting, a body's
  // allocation), run once on an error response that is thrown away.
  touch_spawn_pages();
  touch_stack_below<32 * 1024>();
  if (void* heap = std::malloc(kHeapWarmBytes)) {
    touch_pages(heap, kHeapWarmBytes);
    std::free(heap);  // back to the top of the heap, below the trim threshold: the pages stay, for the request
  }
  (void)cgi_response_head(ctx->error(500, "warm-up"));

  StdioFds fds;
  int msg_flags = 0;
  const ssize_t n = sys::recv_with_fds(fp::kControlFd, buffer_, fds.fd, fds.count, msg_flags, 0);
  // EOF: retired, or the fork server is gone. Nothing was served: exit quietly (closing the connection).
  if (n <= 0) ::_exit(0);
  const ReceivedMessageInfo received{.is_truncated = (msg_flags & MSG_TRUNC) != 0,
                                     .has_extra_fds = (msg_flags & MSG_CTRUNC) != 0,
                                     .fd_count = fds.count};
  // The fork server checked it before forwarding; this only rebuilds envp_ over this process's buffer.
  if (check_spawn_message(std::span<char>(buffer_.data(), static_cast<size_t>(n)), received, envp_) != nullptr)
    ::_exit(127);
  ::setpgid(0, 0);  // done by the fork server already; harmless, and sure
  // A warm connection serves only the file now at the path: one deleted and recreated, or renamed over, after our
  // open is another database, never to be read through this one.
  if (ctx->has_open_db() && !(file_id(ctx->db_config().path) == opened)) ctx->close_db();
  for (int i = 0; i < kStdioFds; ++i) {
    if (::dup2(fds.fd[i], i) < 0) ::_exit(127);
  }
  // Not closefrom(): the warm connection's fds (the database, its -wal and -shm) are open above ours.
  fds.close_all();
  ::close(fp::kControlFd);
  environ = envp_.data();
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::_exit(run_cgi(info_, argv0_, environ, std::move(ctx)));
}

int ForkServer::take_pidfd(pid_t pid, std::uint64_t token) {
  children_.emplace_back(pid, token);
  // Race-free: `pid` is our child and we have not reaped it (only on_sigchld does, later), so the number is still
  // that process. spawnd tracks the child by this pidfd, never by the number, which another process may have by
  // the time spawnd looks (a child that exits at once is reaped by us right away).
  const int pidfd = sys::pidfd_open(pid);  // close-on-exec
  if (pidfd >= 0) return pidfd;
  // spawnd could not watch it, time it out or stop its group, so it must not run on: killed right after its
  // start. (It may have answered already, through its pipes: spawnd lets them decide.)
  const int err = errno;
  ::kill(pid, SIGKILL);
  log_line(name_, "pidfd_open(%d): %s: child killed", static_cast<int>(pid), std::strerror(err));
  return -1;
}

void ForkServer::run_child(const StdioFds& fds) noexcept {
  // Its own process group, so that spawnd can signal the request's whole tree (and a kill aimed at the fork
  // server's group spares requests in flight).
  ::setpgid(0, 0);
  // set_up() made sure 0..2 were taken, so the received fds are >= 3 and these dup2s cannot clobber one another.
  // dup2 clears FD_CLOEXEC on 0..2; closefrom then drops the originals, the control socket, the signalfd and
  // anything else the fork server had open.
  for (int i = 0; i < kStdioFds; ++i) {
    if (::dup2(fds.fd[i], i) < 0) ::_exit(127);
  }
  ::closefrom(kStdioFds);
  // The environment is the message's, nothing else (common/fork_protocol.h). envp_ points into buffer_, which
  // this process owns a copy of now; run_cgi reads it, and getenv() sees the same.
  environ = envp_.data();
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // From here on, exactly a CGI process. noexcept: an exception escaping the handler terminates this child, as it
  // would a CGI process, and can never unwind into the fork server's loop that this process is a copy of.
  // _exit, not exit: run_cgi has written the whole response with writev and closed the database (its Context is
  // gone), and the fork server's atexit handlers and static destructors belong to the fork server.
  ::_exit(run_cgi(info_, argv0_, environ));
}

bool ForkServer::on_sigchld() {
  signalfd_siginfo info[16];
  while (::read(signal_fd_, info, sizeof info) > 0) {
    // Drained: the siginfo is not used, waitpid below finds every child (SIGCHLDs merge).
  }
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return true;  // 0: children still running; -1/ECHILD: none left
    // A waiting child: one we retired, or one that died waiting (killed by someone). spawnd never heard of it.
    if (auto it = std::find(retired_.begin(), retired_.end(), pid); it != retired_.end()) {
      *it = retired_.back();
      retired_.pop_back();
      continue;
    }
    if (auto it = std::find_if(pool_.begin(), pool_.end(), [&](const Waiting& w) { return w.pid == pid; });
        it != pool_.end()) {
      log_line(name_, "pre-forked child %d died waiting (%s %d); replaced", static_cast<int>(pid),
               WIFSIGNALED(status) ? "signal" : "exit status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      ::close(it->pidfd);
      ::close(it->socket);
      pool_.erase(it);
      continue;
    }
    std::uint64_t token = 0;  // an adopted orphan's
    for (auto& child : children_) {
      if (child.first == pid) {
        token = child.second;
        child = children_.back();
        children_.pop_back();
        break;
      }
    }
    if (!send(fp::MessageType::Exited, token, pid, status)) return false;
  }
}

int ForkServer::run() {
  if (!set_up()) return 2;
  if (!send(fp::MessageType::Ready, 0, 0, 0)) return 0;
  const int status = serve();
  // The waiting children served nothing: end them now rather than leave them to notice their socket's EOF.
  for (auto& child : pool_) retire(child);
  pool_.clear();
  return status;
}

int ForkServer::serve() {
  pollfd fds[2] = {{control_fd_, POLLIN, 0}, {signal_fd_, POLLIN, 0}};
  for (;;) {
    const int timeout_ms = retire_idle();  // also tops the pool up
    const int n = sys::retry_eintr([&] { return ::poll(fds, 2, timeout_ms); });
    if (n < 0) {
      log_line(name_, "poll: %s", std::strerror(errno));
      return 1;
    }
    // Exits first: a child's Spawned was sent when it was forked, so an Exited can never overtake it.
    if (fds[1].revents != 0 && !on_sigchld()) return 0;
    if ((fds[0].revents & POLLNVAL) != 0) {
      log_line(name_, "the control socket (fd %d) was closed under us", control_fd_);
      return 0;
    }
    // POLLHUP/POLLERR too: recvmsg still returns the messages queued before the hang-up, then 0 or the error. Every
    // queued Spawn is served before the pool is topped up: a replacement's fork would delay them.
    if (fds[0].revents != 0) {
      for (int i = 0; i < kMaxSpawnsPerWakeup; ++i) {
        const int served = on_control_readable();
        if (served < 0) return 0;
        if (served == 0) break;
      }
    }
  }
}

}  // namespace

int run_fork_server(const HandlerInfo& info, const char* argv0, int control_fd) {
  ForkServer server(info, argv0, control_fd);
  return server.run();
}

}  // namespace spawnd::sdk
