#include "server/gateway/fork_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "common/fork_protocol.h"
#include "common/log.h"
#include "common/sys.h"

namespace spawnd::server {

namespace fp = spawnd::fork_protocol;

namespace {

constexpr int kMaxMessagesPerEvent = 64;

}  // namespace

bool is_sdk_handler(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4) return false;
  auto size = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) return false;
  const char* bytes = static_cast<const char*>(map);
  const std::string_view marker = fp::kForkServerMarker;
  bool found = std::memcmp(bytes, "\x7f" "ELF", 4) == 0 &&
               ::memmem(bytes, size, marker.data(), marker.size()) != nullptr;
  ::munmap(map, size);
  return found;
}

ForkServers::ForkServers(EventLoop& loop, ChildTable& children, std::string directory,
                         std::vector<std::string> base_env, std::size_t servers_per_handler, std::size_t prefork, int dev_null,
                         SpawnedCallback on_spawned)
    : loop_(loop),
      children_(children),
      directory_(std::move(directory)),
      base_env_(std::move(base_env)),
      servers_per_handler_(servers_per_handler ? servers_per_handler : 1),
      prefork_(prefork),
      dev_null_(dev_null),
      on_spawned_(std::move(on_spawned)) {}

ForkServers::~ForkServers() {
  for (auto& [script, handler] : handlers_)
    for (auto& server : handler.servers)
      if (server) {
        server->control.close();
        fail_pending(*server);
      }
}

bool ForkServers::spawn(const std::string& script, const SpawnPool::Job& job) {
  if (job.spec.argv.size() > 1) return false;  // --cgi-argv words: only a real exec can pass them
  auto it = handlers_.find(script);
  if (it == handlers_.end()) {
    std::string path = directory_ + "/" + script;
    if (!HandlerVersion::of(path)) return false;
    Handler handler;
    handler.supervisor = std::make_unique<Supervisor>(loop_, children_, "fork: " + script, path);
    handler.is_sdk = is_sdk_handler(path);
    it = handlers_.emplace(script, std::move(handler)).first;
    if (it->second.is_sdk) start_servers(script, it->second);
    return false;  // its fork servers are only starting: plain CGI meanwhile
  }
  Handler& h = it->second;
  if (h.supervisor->check_replaced()) {
    std::vector<std::shared_ptr<Server>> old = std::move(h.servers);
    h.servers.clear();
    h.is_sdk = is_sdk_handler(h.supervisor->path());
    if (h.is_sdk) start_servers(script, h);
    // Last, and touching nothing of ours afterwards: retiring completes spawns, and a completion may start a queued
    // request, which comes back into spawn() (and may add to handlers_). This job goes to plain CGI: the new fork
    // servers are only starting.
    for (auto& server : old)
      if (server) retire(server);
    return false;
  }
  if (!h.is_sdk || h.servers.empty()) return false;

  std::shared_ptr<Server> server;
  for (std::size_t i = 0; i < h.servers.size(); ++i) {
    auto& candidate = h.servers[(h.next + i) % h.servers.size()];
    if (candidate && candidate->state == State::Ready) {
      server = candidate;
      h.next = (h.next + i + 1) % h.servers.size();
      break;
    }
  }
  if (!server) return false;  // all starting or restarting: plain CGI meanwhile

  std::string message(sizeof(fp::ForkMessageHeader), '\0');
  for (const auto& var : job.spec.envp) {
    message += var;
    message += '\0';
  }
  if (message.size() > fp::kMaxMessageBytes) return false;
  fp::ForkMessageHeader header{fp::MessageType::Spawn,
                               static_cast<std::uint32_t>(message.size() - sizeof(fp::ForkMessageHeader)),
                               job.token, 0, 0};
  std::memcpy(message.data(), &header, sizeof header);

  const int fds[3] = {job.spec.stdin_fd, job.spec.stdout_fd, job.spec.stderr_fd};
  ssize_t n = sys::send_with_fds(server->control.get(), message, fds, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(message.size())) {
    // EAGAIN: this fork server is behind; anything else: it is dying and its exit will be handled.
    if (errno != EAGAIN)
      SPAWND_LOG_WARN("fork: %s: send to fork server %d: %s", script.c_str(), server->process->pid(), std::strerror(errno));
    return false;
  }
  server->pending.insert(job.token);
  return true;
}

void ForkServers::start_servers(const std::string& script, Handler& handler) {
  handler.servers.resize(servers_per_handler_);
  for (auto& slot : handler.servers) {
    auto server = std::make_shared<Server>();
    server->script = script;
    std::weak_ptr<Server> weak = server;
    SupervisedProcess::Hooks hooks;
    hooks.spawn = [this, weak]() -> Result<ChildProcess> {
      auto s = weak.lock();
      int pair[2];
      if (!s || ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return errno_code();
      s->control.fd.reset(pair[0]);
      Fd theirs(pair[1]);
      ::fcntl(s->control.get(), F_SETFL, O_NONBLOCK);
      SpawnSpec spec;
      spec.path = directory_ + "/" + s->script;
      spec.argv = {spec.path};
      spec.envp = base_env_;
      spec.envp.push_back(std::string(fp::kForkServerEnv) + "=" + std::to_string(fp::kControlFd));
      if (prefork_ > 0) spec.envp.push_back(std::string(fp::kPreforkEnv) + "=" + std::to_string(prefork_));
      spec.cwd = directory_;
      spec.stdin_fd = dev_null_;
      spec.stdout_fd = dev_null_;
      spec.stderr_fd = STDERR_FILENO;  // its own log lines ("handler NAME: ...") go to our error log
      spec.fd3 = theirs.get();
      Result<ChildProcess> child = spawn_process(spec);
      if (!child) s->control.close();
      return child;
    };
    hooks.on_started = [this, weak](pid_t) {
      auto s = weak.lock();
      if (!s) return;
      s->state = State::Starting;
      s->control.watch = loop_.watch(s->control.get(), EPOLLIN, [this, weak](std::uint32_t) {
        if (auto locked = weak.lock()) on_control(locked, kMaxMessagesPerEvent);
      });
      if (!s->control.watch) {
        SPAWND_LOG_ERROR("fork: epoll_ctl: %s", std::strerror(errno));
        s->control.close();
        s->process->kill();
      }
    };
    hooks.on_exited = [this, weak](int) {
      if (auto s = weak.lock()) on_server_exit(s);
    };
    server->process = std::make_unique<SupervisedProcess>(*handler.supervisor, "fork server", std::move(hooks));
    slot = std::move(server);
  }
  // Started only once all are in place: a start may fail and be retried later, never re-entering here.
  for (auto& server : handler.servers) server->process->start();
}

void ForkServers::fail_pending(Server& server) {
  auto pending = std::move(server.pending);
  server.pending.clear();
  for (std::uint64_t token : pending) on_spawned_(token, errno_code(ECONNRESET));
}

void ForkServers::retire(const std::shared_ptr<Server>& server) {
  // The answers it has sent already: the children they report exist, and are ours to watch like any other.
  if (server->state != State::Dead) on_control(server, std::numeric_limits<int>::max());
  server->state = State::Dead;
  // Its control socket leaves the loop and closes now, whatever is pending: the caller drops the Server, and an fd
  // left registered would outlive it (a new socketpair could reuse the number while the loop still tracks it).
  server->control.close();
  // The Spawns still queued to it must never fork, or a request given up below would run after all: SIGKILL to its
  // group, which also ends a stopped fork server at once, so the pipe ends it holds close and their requests get
  // their answer (502) now. Its own children live on (each is in a group of its own). It is never restarted.
  server->process->retire();
  // Its unanswered Spawns fail with ECONNRESET (the CGI gateway lets their pipes decide).
  fail_pending(*server);
}

void ForkServers::on_control(const std::shared_ptr<Server>& server, int max_messages) {
  for (int i = 0; i < max_messages && server->control; ++i) {
    fp::ForkMessageHeader header{};
    // Room for one fd (a Spawned's pidfd); more than that is MSG_CTRUNC (and closed).
    int received[1] = {-1};
    int fd_count = 0, msg_flags = 0;
    ssize_t n = sys::recv_with_fds(server->control.get(), {reinterpret_cast<char*>(&header), sizeof header}, received,
                                   fd_count, msg_flags, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) return;
    // ECONNRESET: the fork server died with Spawns of ours unread. The kernel reports that once, ahead of the
    // messages it had sent before dying, which are still queued: read on. Dropping them would lose the children
    // it had already forked (their requests would get 502 while the children run on, and nobody would watch
    // them). EOF follows the last message.
    if (n < 0 && errno == ECONNRESET) continue;
    Fd pidfd(fd_count > 0 ? received[0] : -1);  // owns what came with the message, so that every path closes it
    // Only a Spawned that reports a child carries an fd: at most one, the child's pidfd.
    const bool is_child_report = n == static_cast<ssize_t>(sizeof header) &&
                                 header.type == fp::MessageType::Spawned && header.pid > 0;
    const bool has_right_fds = (msg_flags & MSG_CTRUNC) == 0 && fd_count <= (is_child_report ? 1 : 0);
    if (n != static_cast<ssize_t>(sizeof header) || !has_right_fds) {
      if (n != 0)
        SPAWND_LOG_WARN("fork: %s: fork server %d sent a malformed message (%zd bytes, %d fds)", server->script.c_str(),
                        server->process->pid(), n, fd_count);
      // EOF or garbage: stop talking to it; its exit (or our SIGKILL, then its exit) follows, then its restart.
      server->control.close();
      if (n != 0) server->process->kill();
      fail_pending(*server);
      return;
    }
    switch (header.type) {
      case fp::MessageType::Ready:
        if (server->state == State::Starting) server->state = State::Ready;
        // (Not from the last words of one that died: its death still counts for the back-off.)
        if (auto it = handlers_.find(server->script); it != handlers_.end() && server->state != State::Dead)
          it->second.supervisor->healthy();
        break;
      case fp::MessageType::Spawned:
        if (server->pending.erase(header.token) == 0) break;
        if (header.pid > 0 && pidfd) {
          on_spawned_(header.token, ChildProcess{static_cast<pid_t>(header.pid), std::move(pidfd), false});
        } else if (header.pid > 0) {
          // It could not take the child's pidfd, and killed the child: we cannot watch it, its pipes decide.
          SPAWND_LOG_WARN("fork: %s: fork server %d could not give us child %d (killed)", server->script.c_str(),
                          server->process->pid(), header.pid);
          on_spawned_(header.token, errno_code(ECONNRESET));
        } else {
          on_spawned_(header.token, errno_code(header.pid < 0 ? -header.pid : EIO));
        }
        break;
      case fp::MessageType::Exited:  // a child of its own, or an orphan it adopted; its pidfd told us it exited
        if (WIFSIGNALED(header.status) && WTERMSIG(header.status) != SIGTERM && WTERMSIG(header.status) != SIGKILL)
          SPAWND_LOG_WARN("fork: %s: child %d (spawn %llu) killed by signal %d (%s)", server->script.c_str(),
                          header.pid, static_cast<unsigned long long>(header.token), WTERMSIG(header.status),
                          ::strsignal(WTERMSIG(header.status)));
        break;
      case fp::MessageType::Spawn:
        break;
    }
  }
}

void ForkServers::on_server_exit(const std::shared_ptr<Server>& server) {
  server->state = State::Dead;
  // What it sent before dying is still queued on the control socket (its exit may be seen first): the pids of
  // children it forked (Spawned), which are ours to watch (init reaps them now). Read it all; EOF ends it.
  on_control(server, std::numeric_limits<int>::max());
  server->control.close();
  fail_pending(*server);  // the Spawns it never answered
}

std::uint64_t ForkServers::start_failures() const {
  std::uint64_t failures = 0;
  for (const auto& [script, handler] : handlers_)
    if (handler.supervisor) failures += handler.supervisor->start_failures();
  return failures;
}

}  // namespace spawnd::server
