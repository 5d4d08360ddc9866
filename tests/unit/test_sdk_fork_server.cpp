// The example handlers started as fork servers (common/fork_protocol.h), driven by this test as spawnd would drive
// them: a SOCK_SEQPACKET control socket on fd 3, SPAWND_FORK_SERVER=3, Ready, then Spawn messages carrying the
// environment and three pipe ends. What a child prints must be byte-for-byte what the same executable prints when
// run as CGI with the same environment and body (test_sdk_handlers_cgi.cpp covers the handlers' behaviour itself).
// Tagged [cgi-child] like that file: these start processes and write a temporary SQLite database.
//
// Every wait is bounded, and every process the test starts is reaped: the fork server by ForkServerProcess, its
// children by the fork server (which reports them as Exited).
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>  // std::size
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/fork_protocol.h"
#include "db/database.h"
#include "handler_process.h"

namespace {

namespace fp = spawnd::fork_protocol;
using spawnd::test::CgiResult;
using spawnd::test::TempSite;
using spawnd::test::read_file;
using Env = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

constexpr int kTimeoutMs = 10'000;

std::string env_block(const Env& env) {
  std::string block;
  for (const auto& [k, v] : env) {
    block += k;
    block += '=';
    block += v;
    block += '\0';
  }
  return block;
}

// The open fds of process `pid`, from /proc/<pid>/fd.
std::set<int> open_fds(pid_t pid) {
  std::set<int> fds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') fds.insert(std::atoi(e->d_name));
    closedir(d);
  }
  return fds;
}

// The value of field `name` ("SigBlk") in /proc/<pid>/status, or "" if the process is gone.
std::string proc_status_field(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(name + ":")) {
      std::string value = line.substr(name.size() + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      return value;
    }
  return {};
}

// The signals set in a /proc/<pid>/status mask ("SigIgn", "SigBlk"), leaving out glibc's internal ones (32 up to
// SIGRTMIN: thread cancellation, setxid). glibc's posix_spawn leaves those ignored in every child it starts, even
// with POSIX_SPAWN_SETSIGDEF, and sigaction() refuses to touch them: no program can, so they are not ours to check.
std::uint64_t user_signals(const std::string& hex_mask) {
  std::uint64_t mask = std::stoull(hex_mask, nullptr, 16);
  for (int sig = 32; sig < SIGRTMIN; ++sig) mask &= ~(std::uint64_t{1} << (sig - 1));
  return mask;
}

struct Pipes {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  Pipes() {
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(pipe2(err, O_CLOEXEC) == 0);
  }
  Pipes(const Pipes&) = delete;
  Pipes& operator=(const Pipes&) = delete;
  ~Pipes() {
    for (int* p : {in, out, err})
      for (int i = 0; i < 2; ++i)
        if (p[i] >= 0) close(p[i]);
  }
  // The child's ends, as the Spawn message carries them.
  [[nodiscard]] std::vector<int> child_ends() const { return {in[0], out[1], err[1]}; }
  void close_child_ends() {
    for (int* fd : {&in[0], &out[1], &err[1]}) {
      close(*fd);
      *fd = -1;
    }
  }
  // Hands our ends to pump_child_io, which closes them.
  void pump(const std::string& what, const std::string& body, CgiResult& r) {
    int i = std::exchange(in[1], -1), o = std::exchange(out[0], -1), e = std::exchange(err[0], -1);
    spawnd::test::pump_child_io(what, i, o, e, body, r);
  }
};

struct ForkServerOptions {
  // Start the fork server through `sh -c 'trap "" ...; exec handler'`, so that it inherits ignored signals, and
  // with SIGUSR1 blocked: its children must still start with default dispositions and an empty mask.
  bool inherit_ignored_signals = false;
};

// One handler executable running as a fork server, as spawnd would run it (fork_protocol.h): its own process
// group, fd 3 the control socket, stdin and stdout /dev/null, stderr a file we can read.
class ForkServerProcess {
 public:
  ForkServerProcess(const std::string& name, const TempSite& site, ForkServerOptions options = {})
      : name_(name), stderr_path_(site.dir() + "/" + name + "-fork-server.stderr") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    control_ = sv[0];
    int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(err_fd >= 0);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawn_file_actions_adddup2(&fa, sv[1], fp::kControlFd);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, mask;
    sigfillset(&all);
    sigemptyset(&mask);
    if (options.inherit_ignored_signals) sigaddset(&mask, SIGUSR1);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

    const std::string path = spawnd::test::handler_path(name);
    spawnd::test::EnvStrings envp({{fp::kForkServerEnv, std::to_string(fp::kControlFd)},
                                   {"PATH", "/usr/bin:/bin"},
                                   {"SPAWND_DB", site.db_path()},
                                   {"SPAWND_PRAGMAS", site.pragmas_path()}});
    std::vector<std::string> args;
    if (options.inherit_ignored_signals) {
      args = {"/bin/sh", "-c", "trap '' PIPE INT TERM HUP; exec \"$0\"", path};
    } else {
      args = {path};
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), envp.pointers.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    close(err_fd);
    if (rc != 0) pid_ = -1;
    INFO("spawning " << path << " as a fork server: " << std::strerror(rc));
    REQUIRE(rc == 0);
  }

  ForkServerProcess(const ForkServerProcess&) = delete;
  ForkServerProcess& operator=(const ForkServerProcess&) = delete;

  // Closing the control socket tells it to exit; if it does not within the timeout, it is killed. Reaped either way.
  ~ForkServerProcess() {
    if (pid_ <= 0) return;
    if (control_ >= 0) close(control_);
    if (wait_exit(kTimeoutMs) < 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }

  [[nodiscard]] pid_t pid() const { return pid_; }

  // Closes the control socket and waits for the fork server to exit. Returns its wait status, or -1 on timeout.
  int close_control_and_wait() {
    close(control_);
    control_ = -1;
    return wait_exit(kTimeoutMs);
  }

  // The next message from the fork server, in order (REQUIREs one within the timeout).
  fp::ForkMessageHeader next_message() {
    if (!pending_.empty()) {
      fp::ForkMessageHeader h = pending_.front();
      pending_.pop_front();
      return h;
    }
    return receive();
  }

  void wait_ready() {
    fp::ForkMessageHeader h = next_message();
    REQUIRE(h.type == fp::MessageType::Ready);
  }

  // Sends `payload` (header bytes and all) with `fds` attached. Returns false with errno set if sendmsg fails.
  bool send_raw(const std::string& payload, const std::vector<int>& fds) {
    iovec iov{const_cast<char*>(payload.data()), payload.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      if (c == nullptr) return false;
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    return sendmsg(control_, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(payload.size());
  }

  static std::string message(fp::MessageType type, std::uint64_t token, const std::string& block,
                             std::uint32_t env_bytes) {
    fp::ForkMessageHeader h{};
    h.type = type;
    h.env_bytes = env_bytes;
    h.token = token;
    std::string out(reinterpret_cast<const char*>(&h), sizeof h);
    return out + block;
  }

  // Sends a well-formed Spawn for `env` with `fds` as the child's stdin, stdout and stderr.
  void send_spawn(std::uint64_t token, const Env& env, const std::vector<int>& fds) {
    std::string block = env_block(env);
    REQUIRE(send_raw(message(fp::MessageType::Spawn, token, block, static_cast<std::uint32_t>(block.size())), fds));
  }

  // Waits for Spawned(token); other messages are kept, in order, for later. Returns its pid field.
  std::int32_t expect_spawned(std::uint64_t token) {
    fp::ForkMessageHeader h = take([&](const fp::ForkMessageHeader& m) {
      return m.type == fp::MessageType::Spawned && m.token == token;
    });
    return h.pid;
  }

  // Waits for Exited(pid); returns its wait status.
  int expect_exited(pid_t pid) { return expect_exited_message(pid).status; }
  fp::ForkMessageHeader expect_exited_message(pid_t pid) {
    return take([&](const fp::ForkMessageHeader& m) { return m.type == fp::MessageType::Exited && m.pid == pid; });
  }

  // One request through the fork server: Spawn with fresh pipes, the response read from them, then Spawned and
  // Exited checked (exit_code is the Exited status, as a shell would show it).
  CgiResult run(const Env& env, const std::string& body = {}) {
    Pipes p;
    const std::uint64_t token = next_token_++;
    send_spawn(token, env, p.child_ends());
    p.close_child_ends();
    const std::int32_t pid = expect_spawned(token);
    REQUIRE(pid > 0);
    CHECK(take_pidfd(token));
    CgiResult r;
    p.pump("fork-server child of " + name_, body, r);
    fp::ForkMessageHeader exited = expect_exited_message(pid);
    CHECK(exited.token == token);
    r.exit_code = spawnd::test::exit_code_of(exited.status);
    spawnd::test::parse_cgi_output(r);
    return r;
  }

  [[nodiscard]] std::string stderr_text() const { return read_file(stderr_path_); }

  std::uint64_t next_token_ = 1;

 private:
  fp::ForkMessageHeader receive() {
    pollfd p{control_, POLLIN, 0};
    int n = poll(&p, 1, kTimeoutMs);
    INFO("fork server of " << name_ << " stderr: " << stderr_text());
    REQUIRE(n == 1);
    fp::ForkMessageHeader h{};
    char buf[64];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got = recvmsg(control_, &msg, MSG_CMSG_CLOEXEC);
    REQUIRE(got == static_cast<ssize_t>(sizeof h));  // 0 would mean the fork server went away
    std::memcpy(&h, buf, sizeof h);
    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      REQUIRE(c->cmsg_level == SOL_SOCKET);
      REQUIRE(c->cmsg_type == SCM_RIGHTS);
      for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
    }
    // At most one fd, and only with a Spawned that reports a child: that child's pidfd (fork_protocol.h).
    const bool is_child_report = h.type == fp::MessageType::Spawned && h.pid > 0;
    INFO("message type " << static_cast<unsigned>(h.type) << ", pid " << h.pid << ", " << fds.size() << " fds");
    CHECK((msg.msg_flags & MSG_CTRUNC) == 0);
    CHECK(fds.size() <= (is_child_report ? 1U : 0U));
    for (int fd : fds) {
      if (is_child_report && pidfds_.count(h.token) == 0) {
        pidfds_.emplace(h.token, fd);
      } else {
        close(fd);
      }
    }
    return h;
  }

  template <typename Pred>
  fp::ForkMessageHeader take(Pred matches) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it)
      if (matches(*it)) {
        fp::ForkMessageHeader h = *it;
        pending_.erase(it);
        return h;
      }
    for (;;) {
      fp::ForkMessageHeader h = receive();
      if (matches(h)) return h;
      pending_.push_back(h);
    }
  }

  // waitpid with a deadline: polls WNOHANG. Returns the wait status, or -1 on timeout.
  int wait_exit(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 || Clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string name_;
  std::string stderr_path_;
  int control_ = -1;
  pid_t pid_ = -1;
  std::deque<fp::ForkMessageHeader> pending_;
  std::map<std::uint64_t, spawnd::Fd> pidfds_;  // what came with each Spawned, by token

 public:
  // The pidfd that came with Spawned(token) (empty if none came, or it was taken already).
  spawnd::Fd take_pidfd(std::uint64_t token) {
    auto it = pidfds_.find(token);
    if (it == pidfds_.end()) return {};
    spawnd::Fd fd = std::move(it->second);
    pidfds_.erase(it);
    return fd;
  }
};

// Whether the read end `fd` reaches EOF within the timeout, i.e. every copy of the pipe's write end was closed.
bool reaches_eof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, kTimeoutMs) != 1) return false;
  char c;
  return read(fd, &c, 1) == 0;
}

CgiResult same_as_cgi(ForkServerProcess& fs, const std::string& name, const Env& env, const std::string& body = {}) {
  CgiResult forked = fs.run(env, body);
  CgiResult cgi = spawnd::test::run_cgi(name, env, body);
  INFO("fork-server child stderr: " << forked.stderr_bytes);
  CHECK(forked.exit_code == 0);
  CHECK(forked.stdout_bytes == cgi.stdout_bytes);
  CHECK(forked.stderr_bytes == cgi.stderr_bytes);
  return forked;
}

int count_rows(const TempSite& site, const char* sql) {
  auto conn = spawnd::db::Connection::open(site.db_path(), spawnd::pragmas::find_preset(site.pragmas_path()));
  auto st = conn.prepare(sql);
  REQUIRE(st.step());
  return static_cast<int>(st.column_int64(0));
}

}  // namespace

TEST_CASE("hello served by its fork server prints exactly what it prints as CGI", "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  CgiResult r = same_as_cgi(fs, "hello", site.env("hello", "GET"));
  CHECK(r.status == 200);
  CHECK(r.body == "Hello, world!\n");
  same_as_cgi(fs, "hello", site.env("hello", "HEAD"));
  // A body on stdin, and a short one (400), both as under CGI.
  auto e = site.env_with_body("hello", "POST", "text/plain", "0123456789");
  same_as_cgi(fs, "hello", e, "0123456789");
  e["CONTENT_LENGTH"] = "100";
  CHECK(same_as_cgi(fs, "hello", e, "0123456789").status == 400);
  // The fork server itself never opens the database, and hello's children do not either.
  CHECK_FALSE(std::filesystem::exists(site.db_path()));
  CHECK(fs.stderr_text().empty());
}

TEST_CASE("a fork-server child's environment is exactly the Spawn message's", "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("env", site);
  fs.wait_ready();
  auto e = site.env("env", "GET", "/extra", "q=%3Cscript%3E&x=1");
  e["HTTP_COOKIE"] = "sid=<b>";
  CgiResult r = same_as_cgi(fs, "env", e);
  CHECK(r.status == 200);
  // The fork server's own environment stays behind.
  CHECK(r.body.find(fp::kForkServerEnv) == std::string::npos);
  CHECK(r.body.find("<th>PATH</th>") == std::string::npos);
  CHECK(r.body.find("<tr><th>PATH_INFO</th><td>/extra</td></tr>") != std::string::npos);
}

TEST_CASE("guestbook GET and POST through the fork server match CGI and write the database",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("guestbook", site);
  fs.wait_ready();
  // The first GET creates the schema, in a child (the fork server opened nothing so far).
  CgiResult first = fs.run(site.env("guestbook", "GET"));
  INFO(first.stderr_bytes);
  CHECK(first.status == 200);
  CHECK(first.exit_code == 0);
  same_as_cgi(fs, "guestbook", site.env("guestbook", "GET"));

  const std::string body = "name=Forked&message=from+a+fork-server+child";
  auto post = site.env_with_body("guestbook", "POST", "application/x-www-form-urlencoded", body);
  CgiResult r = same_as_cgi(fs, "guestbook", post, body);  // one POST each way
  CHECK(r.status == 303);
  CHECK(r.stdout_bytes.starts_with("Status: 303 See Other\r\n"));
  CHECK(r.header("location") == "/cgi-bin/guestbook");
  CHECK(count_rows(site, "SELECT count(*) FROM guestbook WHERE name = 'Forked'") == 2);

  // The page now lists both entries, the same for both runtimes.
  CgiResult page = same_as_cgi(fs, "guestbook", site.env("guestbook", "GET"));
  CHECK(page.body.find("from a fork-server child") != std::string::npos);
}

TEST_CASE("kv PUT then GET through the fork server match CGI", "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("kv", site);
  fs.wait_ready();
  const std::string value = R"({"forked": true})";
  CgiResult put = fs.run(site.env_with_body("kv", "PUT", "application/json", value, "/fork/1"), value);
  INFO(put.stderr_bytes);
  CHECK(put.status == 201);
  CHECK(put.exit_code == 0);
  CgiResult get = same_as_cgi(fs, "kv", site.env("kv", "GET", "/fork/1"));
  CHECK(get.status == 200);
  CHECK(get.body == value);
  // Written by CGI, read by a fork-server child.
  CHECK(spawnd::test::run_cgi("kv", site.env_with_body("kv", "PUT", "application/json", "7", "/cgi"), "7").status ==
        201);
  CHECK(fs.run(site.env("kv", "GET", "/cgi")).body == "7");
  same_as_cgi(fs, "kv", site.env("kv", "GET", "/missing"));
}

TEST_CASE("a fork-server child starts with fds 0-2 only, no blocked or ignored signals, in its own group",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site, {.inherit_ignored_signals = true});
  fs.wait_ready();
  // The fork server itself inherited SIGPIPE & co. ignored and SIGUSR1 blocked; it has put the dispositions back.
  CHECK(user_signals(proc_status_field(fs.pid(), "SigIgn")) == 0);

  // A POST whose body we hold back keeps the child waiting on stdin while we look at it.
  Pipes p;
  const std::string body = "abcde";
  auto e = site.env_with_body("hello", "POST", "text/plain", body);
  fs.send_spawn(42, e, p.child_ends());
  p.close_child_ends();
  const pid_t pid = fs.expect_spawned(42);
  REQUIRE(pid > 0);
  // Until it has set itself up (dup2, closefrom, then the signal mask), it may still hold the fork server's fds
  // and its blocked signals.
  const auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
  while ((open_fds(pid) != std::set<int>{0, 1, 2} || user_signals(proc_status_field(pid, "SigBlk")) != 0) &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  CHECK(open_fds(pid) == std::set<int>{0, 1, 2});
  CHECK(user_signals(proc_status_field(pid, "SigBlk")) == 0);
  CHECK(user_signals(proc_status_field(pid, "SigIgn")) == 0);
  CHECK(getpgid(pid) == pid);

  CgiResult r;
  p.pump("held-back POST", body, r);
  spawnd::test::parse_cgi_output(r);
  CHECK(fs.expect_exited(pid) == 0);
  CHECK(r.status == 200);
}

TEST_CASE("malformed messages are refused, their fds closed, and the fork server carries on",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  const std::string good_block = env_block(site.env("hello", "GET"));
  const auto good_size = static_cast<std::uint32_t>(good_block.size());

  struct Row {
    const char* why;
    std::string payload;
    int fd_copies;     // how many copies of the pipe's write end travel with the message
    bool is_answered;  // carries a whole header, so a token: Spawned with -EINVAL
  };
  const std::string oversize(fp::kMaxMessageBytes, 'x');
  const Row rows[] = {
      {"not a Spawn", ForkServerProcess::message(fp::MessageType::Exited, 101, good_block, good_size), 3, true},
      {"env_bytes larger than the block",
       ForkServerProcess::message(fp::MessageType::Spawn, 102, good_block, good_size + 10), 3, true},
      {"env_bytes smaller than the block",
       ForkServerProcess::message(fp::MessageType::Spawn, 103, good_block, good_size - 1), 3, true},
      {"two fds", ForkServerProcess::message(fp::MessageType::Spawn, 104, good_block, good_size), 2, true},
      {"four fds", ForkServerProcess::message(fp::MessageType::Spawn, 105, good_block, good_size), 4, true},
      {"no fds", ForkServerProcess::message(fp::MessageType::Spawn, 106, good_block, good_size), 0, true},
      {"block without the final NUL",
       ForkServerProcess::message(fp::MessageType::Spawn, 107, "A=1\0B=2", 7), 3, true},
      {"entry without '='", ForkServerProcess::message(fp::MessageType::Spawn, 108, std::string("A=1\0B\0", 6), 6),
       3, true},
      {"entry with an empty name",
       ForkServerProcess::message(fp::MessageType::Spawn, 109, std::string("=1\0", 3), 3), 3, true},
      {"longer than kMaxMessageBytes",
       ForkServerProcess::message(fp::MessageType::Spawn, 110, oversize,
                                  static_cast<std::uint32_t>(oversize.size())),
       3, true},
      {"shorter than a header", std::string(10, '\x02'), 3, false},
      {"empty with fds", std::string(), 3, false},
  };
  for (const Row& row : rows) {
    INFO(row.why);
    int pipe_fds[2];
    REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
    std::vector<int> fds(static_cast<size_t>(row.fd_copies), pipe_fds[1]);
    bool sent = fs.send_raw(row.payload, fds);
    INFO("sendmsg: " << std::strerror(errno));
    REQUIRE(sent);
    close(pipe_fds[1]);
    if (row.is_answered) {
      std::uint64_t token;
      std::memcpy(&token, row.payload.data() + offsetof(fp::ForkMessageHeader, token), sizeof token);
      CHECK(fs.expect_spawned(token) == -EINVAL);
    }
    // The fork server kept no copy of the fds: the write end is closed everywhere.
    if (row.fd_copies > 0) CHECK(reaches_eof(pipe_fds[0]));
    close(pipe_fds[0]);
  }
  // Still serving, and the next message is the answer to this Spawn: the short ones got none.
  fs.next_token_ = 500;
  CgiResult r = fs.run(site.env("hello", "GET"));
  CHECK(r.status == 200);
  CHECK(r.exit_code == 0);
  std::string log = fs.stderr_text();
  INFO(log);
  CHECK(log.starts_with("handler hello: fork server: "));
  CHECK(std::count(log.begin(), log.end(), '\n') == static_cast<long>(std::size(rows)));
  CHECK(log.find("message longer than kMaxMessageBytes") != std::string::npos);
}

TEST_CASE("the fork server's fd count stays the same over 200 spawns", "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  REQUIRE(fs.run(site.env("hello", "GET")).status == 200);
  const std::set<int> before = open_fds(fs.pid());
  CHECK(before.size() >= 5);  // 0, 1, 2, the control socket, the signalfd
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    CgiResult r = fs.run(site.env("hello", "GET"));
    if (r.exit_code == 0 && r.body == "Hello, world!\n") ++ok;
  }
  CHECK(ok == 200);
  CHECK(open_fds(fs.pid()) == before);
}

TEST_CASE("a burst of Spawns before any answer is read: all served, each Spawned then Exited",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  constexpr int kBurst = 24;
  std::vector<std::unique_ptr<Pipes>> pipes;
  for (int i = 0; i < kBurst; ++i) {
    pipes.push_back(std::make_unique<Pipes>());
    fs.send_spawn(static_cast<std::uint64_t>(1000 + i), site.env("hello", "GET"), pipes.back()->child_ends());
    pipes.back()->close_child_ends();
  }
  // Messages arrive in order per child: its Spawned is always before its Exited.
  std::map<std::uint64_t, pid_t> pid_of;
  std::set<pid_t> exited;
  for (int seen = 0; seen < 2 * kBurst; ++seen) {
    fp::ForkMessageHeader m = fs.next_message();
    if (m.type == fp::MessageType::Spawned) {
      CHECK(m.pid > 0);
      pid_of[m.token] = m.pid;
    } else {
      REQUIRE(m.type == fp::MessageType::Exited);
      CHECK(pid_of.count(m.token) == 1);  // its Spawn's token, which was answered first
      CHECK(pid_of[m.token] == m.pid);
      CHECK(m.status == 0);
      exited.insert(m.pid);
    }
  }
  CHECK(pid_of.size() == static_cast<size_t>(kBurst));
  CHECK(exited.size() == static_cast<size_t>(kBurst));
  for (int i = 0; i < kBurst; ++i) {
    CgiResult r;
    pipes[static_cast<size_t>(i)]->pump("burst child", {}, r);
    spawnd::test::parse_cgi_output(r);
    CHECK(r.body == "Hello, world!\n");
  }
}

namespace {

bool is_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace

TEST_CASE("Spawned carries a pidfd for its child, which reports the child's exit, Exited carries the Spawn's token",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  Pipes p;
  const std::string body = "abcde";
  // The child reads a body of 5 bytes before it answers: it stays alive until we send it.
  fs.send_spawn(41, site.env_with_body("hello", "POST", "text/plain", body), p.child_ends());
  p.close_child_ends();
  const pid_t child = fs.expect_spawned(41);
  REQUIRE(child > 0);
  spawnd::Fd pidfd = fs.take_pidfd(41);
  REQUIRE(pidfd);
  CHECK(spawnd::test::pidfd_target(pidfd.get()) == std::to_string(child));
  CHECK((fcntl(pidfd.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK_FALSE(is_readable(pidfd.get(), 0));  // alive, waiting for its body

  CgiResult r;
  p.pump("child with a pidfd", body, r);
  spawnd::test::parse_cgi_output(r);
  CHECK(r.status == 200);
  CHECK(is_readable(pidfd.get(), kTimeoutMs));  // it exited: the pidfd says so, whoever reaps it
  fp::ForkMessageHeader exited = fs.expect_exited_message(child);
  CHECK(exited.token == 41);
  CHECK(exited.status == 0);
}

TEST_CASE("a fork server that cannot take a child's pidfd kills the child and reports its pid without an fd",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  // Room for exactly the 3 fds of a Spawn below its fd limit, none for the pidfd.
  const std::set<int> open = open_fds(fs.pid());
  int free_found = 0, limit = 0;
  for (int fd = 0; free_found < 3; ++fd)
    if (open.count(fd) == 0) {
      ++free_found;
      limit = fd + 1;
    }
  rlimit tight{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
  REQUIRE(prlimit(fs.pid(), RLIMIT_NOFILE, &tight, nullptr) == 0);

  Pipes p;
  fs.send_spawn(51, site.env("hello", "GET"), p.child_ends());
  p.close_child_ends();
  const pid_t child = fs.expect_spawned(51);
  CHECK(child > 0);
  CHECK_FALSE(fs.take_pidfd(51));  // receive() checked that no fd came with it
  // Killed at once (a child this fast may have answered first): its pipes end either way.
  CgiResult r;
  p.pump("killed child", {}, r);
  fp::ForkMessageHeader exited = fs.expect_exited_message(child);
  CHECK(exited.token == 51);
  // SIGKILL, or whatever it exited with first (it runs under the same tight fd limit).
  CHECK((!WIFSIGNALED(exited.status) || WTERMSIG(exited.status) == SIGKILL));
  CHECK(fs.stderr_text().find("Too many open files: child killed") != std::string::npos);
}

TEST_CASE("closing the control socket ends the fork server with 0, children in flight live on",
          "[cgi-child][fork-server]") {
  TempSite site;
  ForkServerProcess fs("hello", site);
  fs.wait_ready();
  Pipes p;
  const std::string body = "abcde";
  fs.send_spawn(7, site.env_with_body("hello", "POST", "text/plain", body), p.child_ends());
  p.close_child_ends();
  const pid_t child = fs.expect_spawned(7);
  REQUIRE(child > 0);

  const int status = fs.close_control_and_wait();
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The orphan (reaped by init now) still gets its body and answers.
  CgiResult r;
  p.pump("orphaned child", body, r);
  spawnd::test::parse_cgi_output(r);
  CHECK(r.status == 200);
  CHECK(r.body == "Hello, world!\n");
}

TEST_CASE("SPAWND_FORK_SERVER without a control socket on that fd fails with one line", "[cgi-child][fork-server]") {
  CgiResult r = spawnd::test::run_cgi("hello", {{fp::kForkServerEnv, "3"}});
  CHECK(r.exit_code == 2);
  CHECK(r.stderr_bytes.find("handler hello: fork server: fd 3") == 0);
  CHECK(r.stdout_bytes.empty());
  CgiResult bad = spawnd::test::run_cgi("hello", {{fp::kForkServerEnv, "three"}});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("every built handler executable carries the fork-server marker", "[cgi-child][fork-server]") {
  int handlers = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SPAWND_CGI_BIN_DIR)) {
    if (!entry.is_regular_file() || access(entry.path().c_str(), X_OK) != 0) continue;
    const std::string bytes = read_file(entry.path());
    INFO(entry.path());
    CHECK(bytes.find(fp::kForkServerMarker) != std::string::npos);
    ++handlers;
  }
  CHECK(handlers >= 4);  // hello, env, guestbook, kv
}
