#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "common/ascii.h"
#include "common/net_addr.h"
#include "proc.h"

extern char** environ;

namespace spawnd::e2e {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Reads more bytes into `buf` before `deadline`. Returns false on timeout, EOF or error.
bool read_more(const Fd& fd, std::string& buf, Clock::time_point deadline, bool* is_eof = nullptr) {
  pollfd p{fd.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, remaining_ms(deadline));
  if (rc <= 0) return false;
  char tmp[65536];
  ssize_t n;
  do n = ::read(fd.get(), tmp, sizeof tmp);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {  // EOF, or an error such as ECONNRESET: either way the peer is gone
    if (is_eof) *is_eof = true;
    return false;
  }
  buf.append(tmp, static_cast<std::size_t>(n));
  return true;
}

// Starts `argv` (argv[0] a path, or a name looked up in PATH) with `env` and its stdout and stderr on fresh pipes,
// whose read ends are returned in `out_r` and `err_r` (close-on-exec). Throws std::runtime_error on failure.
pid_t spawn_piped(std::vector<std::string> argv, std::vector<std::string> env, Fd& out_r, Fd& err_r) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  out_r.reset(out[0]);
  Fd out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  err_r.reset(err[0]);
  Fd err_w(err[1]);
  std::vector<char*> av, ev;
  for (auto& s : argv) av.push_back(s.data());
  av.push_back(nullptr);
  for (auto& s : env) ev.push_back(s.data());
  ev.push_back(nullptr);
  // spawnd starts as a shell would start it: stdin from /dev/null, nothing open beyond fds 0-2 (ctest's log file
  // and the test runner's pipes were leaking into it, and through it into any fd count a test takes), and default
  // signal dispositions with an empty mask, whatever the test runner inherited.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  init_shell_like_spawnattr(attr, false);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, av[0], &fa, &attr, av.data(), ev.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// Reads `out` and `err` until both are at EOF, or until `deadline` if there is one, passing every read to `sink`
// (true: it came from `out`).
void drain_pipes(const Fd& out, const Fd& err, std::optional<Clock::time_point> deadline,
                 const std::function<void(bool is_stdout, std::string_view data)>& sink) {
  pollfd fds[2] = {{out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}};
  int open_count = 2;
  while (open_count > 0) {
    int n = ::poll(fds, 2, deadline ? remaining_ms(*deadline) : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (n == 0 && deadline)) return;
    for (auto& p : fds) {
      if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t got = ::read(p.fd, buf, sizeof buf);
      if (got <= 0) {
        p.fd = -1;
        --open_count;
        continue;
      }
      sink(p.fd == out.get(), std::string_view(buf, static_cast<std::size_t>(got)));
    }
  }
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  return env;
}

}  // namespace

// ---- TempDir ----

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/spawnd-e2e-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& relative, std::string_view content, bool is_executable) const {
  fs::path p = fs::path(path_) / relative;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
  if (is_executable) fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  return p.string();
}

std::string TempDir::install(const std::string& relative, const std::string& from) const {
  fs::path p = fs::path(path_) / relative;
  fs::create_directories(p.parent_path());
  fs::copy_file(from, p, fs::copy_options::overwrite_existing);
  fs::permissions(p, fs::perms::owner_all);
  return p.string();
}

void TempDir::deploy(const std::string& relative, const std::string& from) const {
  const fs::path p = fs::path(path_) / relative;
  const fs::path next = p.parent_path() / ("." + p.filename().string() + ".new");
  fs::copy_file(from, next, fs::copy_options::overwrite_existing);
  fs::permissions(next, fs::perms::owner_all);
  fs::rename(next, p);
}

// ---- Spawnd ----

Spawnd::Spawnd(std::vector<std::string> args, std::map<std::string, std::string> extra_env, std::string binary) {
  std::vector<std::string> argv{binary.empty() ? std::string(SPAWND_BINARY) : std::move(binary)};
  if (std::find(args.begin(), args.end(), "--listen") == args.end()) {
    argv.emplace_back("--listen");
    argv.emplace_back("127.0.0.1:0");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = current_environment();
  for (auto& [k, v] : extra_env) env.push_back(k + "=" + v);
  pid_ = spawn_piped(std::move(argv), std::move(env), out_, err_);

  reader_ = std::thread([this] {
    drain_pipes(out_, err_, std::nullopt, [this](bool is_stdout, std::string_view data) {
      std::lock_guard lock(mutex_);
      (is_stdout ? out_text_ : err_text_).append(data);
    });
  });

  // "listening on http://127.0.0.1:PORT" (or "[::1]:PORT"): the port is after the line's last ':'.
  auto port_on_line = [](const std::string& text, std::size_t at) {
    const auto nl = text.find('\n', at);
    const auto colon = text.rfind(':', nl);
    return static_cast<std::uint16_t>(std::stoi(text.substr(colon + 1, nl - colon - 1)));
  };
  const std::string marker = "listening on http://";
  bool is_ready = wait_until(
      [&] {
        std::lock_guard lock(mutex_);
        auto at = err_text_.find(marker);
        if (at == std::string::npos) return false;
        if (err_text_.find('\n', at) == std::string::npos) return false;
        port_ = port_on_line(err_text_, at);
        if (auto tls_at = err_text_.find("listening on https://"); tls_at != std::string::npos && tls_at < at)
          tls_port_ = port_on_line(err_text_, tls_at);
        return true;
      },
      std::chrono::seconds(10));
  if (!is_ready) {
    stop(2000, SIGKILL);
    throw std::runtime_error("spawnd did not start; its stderr:\n" + stderr_text());
  }
}

Spawnd::~Spawnd() {
  if (!is_reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (reader_.joinable()) reader_.join();
}

std::string Spawnd::stderr_text() const {
  std::lock_guard lock(mutex_);
  return err_text_;
}

std::string Spawnd::stdout_text() const {
  std::lock_guard lock(mutex_);
  return out_text_;
}

int Spawnd::stop(int timeout_ms, int sig) {
  if (is_reaped_) return -1;
  ::kill(pid_, sig);
  int status = 0;
  bool has_exited = wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                               std::chrono::milliseconds(timeout_ms));
  if (!has_exited) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  is_reaped_ = true;
  if (reader_.joinable()) reader_.join();
  return has_exited ? status : -1;
}

const std::string kCgiDir = std::filesystem::path(SPAWND_SOURCE_DIR "/tests/cgi").lexically_normal().string();

int exit_code(const ExitResult& r) { return r.status >= 0 && WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1; }

ExitResult run_spawnd(const std::vector<std::string>& args, int timeout_ms) {
  std::vector<std::string> argv{SPAWND_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(std::move(argv), timeout_ms);
}

ExitResult run_command(std::vector<std::string> argv, int timeout_ms) {
  Fd out_r, err_r;
  const pid_t pid = spawn_piped(std::move(argv), current_environment(), out_r, err_r);

  // Collect both pipes until they close (spawnd exited) or the deadline passes.
  ExitResult result;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  drain_pipes(out_r, err_r, deadline, [&](bool is_stdout, std::string_view data) {
    (is_stdout ? result.stdout_text : result.stderr_text).append(data);
  });
  int status = 0;
  bool has_exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                               std::chrono::milliseconds(remaining_ms(deadline)));
  if (!has_exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  result.status = has_exited ? status : -1;
  return result;
}

// ---- client ----

std::uint16_t free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("socket");
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sin), &len) != 0)
    throw std::runtime_error(std::string("free_port: ") + std::strerror(errno));
  return ntohs(sin.sin_port);
}

std::optional<std::string> HttpResponse::field(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::size_t HttpResponse::count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& f : fields) n += iequals(f.first, name) ? 1 : 0;
  return n;
}

namespace {

Fd connect_with(std::string_view address, std::uint16_t port, int rcvbuf_bytes) {
  Result<net::SockAddr> to = net::parse_numeric_host(address);
  if (!to) throw std::runtime_error("connect to " + std::string(address) + ": " + to.error().message());
  auto& storage = to->storage;
  if (to->family() == AF_INET) {
    reinterpret_cast<sockaddr_in&>(storage).sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6&>(storage).sin6_port = htons(port);
  }
  Fd fd(::socket(to->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("socket");
  if (rcvbuf_bytes > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  if (::connect(fd.get(), to->get(), to->length) != 0)
    throw std::runtime_error("connect to " + net::join_host_port(address, port) + ": " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

Fd with_send_timeout(Fd fd, int send_timeout_ms) {
  timeval tv{send_timeout_ms / 1000, (send_timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

}  // namespace

Fd connect_to(std::uint16_t port) { return connect_with("127.0.0.1", port, 0); }

Fd connect_to(std::string_view address, std::uint16_t port) { return connect_with(address, port, 0); }

Fd connect_to(std::uint16_t port, int send_timeout_ms) {
  return with_send_timeout(connect_with("127.0.0.1", port, 0), send_timeout_ms);
}

Fd connect_small_window(std::uint16_t port, int rcvbuf_bytes, int send_timeout_ms) {
  return with_send_timeout(connect_with("127.0.0.1", port, rcvbuf_bytes), send_timeout_ms);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool send_all(const Fd& fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

HttpResponse read_response(const Fd& fd, std::string& buf, bool is_head_request, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  HttpResponse r;
  // Head; interim 1xx responses (100 Continue) are skipped.
  std::size_t head_end;
  for (;;) {
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos)
      if (!read_more(fd, buf, deadline)) return r;
    std::string head = buf.substr(0, head_end);
    buf.erase(0, head_end + 4);
    std::size_t line_end = head.find("\r\n");
    r.status_line = head.substr(0, line_end);
    r.status = r.status_line.size() >= 12 ? std::atoi(r.status_line.c_str() + 9) : 0;
    r.fields.clear();
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        r.fields.emplace_back(line.substr(0, colon), v);
      }
      pos = e + 2;
    }
    if (r.status >= 200 || r.status == 0) break;
  }
  // Body (RFC 9112 §6.3).
  if (is_head_request || r.status == 204 || r.status == 304) {
    r.is_complete = true;
    return r;
  }
  auto te = r.field("Transfer-Encoding");
  if (te && te->find("chunked") != std::string::npos) {
    r.was_chunked = true;
    for (;;) {
      std::size_t line_end;
      while ((line_end = buf.find("\r\n")) == std::string::npos)
        if (!read_more(fd, buf, deadline)) return r;
      std::size_t size = std::strtoul(buf.substr(0, line_end).c_str(), nullptr, 16);
      while (buf.size() < line_end + 2 + size + 2)
        if (!read_more(fd, buf, deadline)) return r;
      r.body.append(buf, line_end + 2, size);
      buf.erase(0, line_end + 2 + size + 2);
      if (size == 0) break;  // no trailers from spawnd
    }
    r.is_complete = true;
    return r;
  }
  if (auto cl = r.field("Content-Length")) {
    std::size_t n = std::strtoull(cl->c_str(), nullptr, 10);
    while (buf.size() < n)
      if (!read_more(fd, buf, deadline)) return r;
    r.body = buf.substr(0, n);
    buf.erase(0, n);
    r.is_complete = true;
    return r;
  }
  // Delimited by the close.
  bool is_eof = false;
  while (read_more(fd, buf, deadline, &is_eof)) {
  }
  r.body = std::move(buf);
  buf.clear();
  r.is_complete = is_eof;
  return r;
}

HttpResponse read_response(const Fd& fd, bool is_head_request, int timeout_ms) {
  std::string leftover;
  return read_response(fd, leftover, is_head_request, timeout_ms);
}

HttpResponse request(std::uint16_t port, std::string_view raw_request, int timeout_ms) {
  Fd fd = connect_to(port);
  send_all(fd, raw_request);
  return read_response(fd, raw_request.substr(0, 5) == "HEAD ", timeout_ms);
}

HttpResponse get(std::uint16_t port, std::string_view target, int timeout_ms) {
  return request(port, "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 timeout_ms);
}

bool wait_closed(const Fd& fd, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::read(fd.get(), tmp, sizeof tmp);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return true;
  }
}

std::string read_until_close(const Fd& fd, std::string& leftover, int timeout_ms, bool* is_closed) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  bool is_eof = false;
  while (read_more(fd, leftover, deadline, &is_eof)) {
  }
  if (is_closed) *is_closed = is_eof;
  return std::exchange(leftover, {});
}

bool read_until(const Fd& fd, std::string& buf, std::string_view marker, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (buf.find(marker) == std::string::npos)
    if (!read_more(fd, buf, deadline)) return false;
  return true;
}

std::uint16_t local_port(const Fd& fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

long long count_rows(const std::string& db, const char* table) {
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string why = conn ? sqlite3_errmsg(conn) : "out of memory";
    sqlite3_close(conn);
    throw std::runtime_error("open " + db + ": " + why);
  }
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_stmt* st = nullptr;
  const std::string sql = std::string("SELECT count(*) FROM ") + table;
  long long n = -1;
  if (sqlite3_prepare_v2(conn, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  const std::string why = sqlite3_errmsg(conn);
  sqlite3_finalize(st);
  sqlite3_close(conn);
  if (n < 0) throw std::runtime_error(sql + " in " + db + ": " + why);
  return n;
}

void init_shell_like_spawnattr(posix_spawnattr_t& attr, bool new_group) {
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr, flags);
}

std::string query_text(const std::string& db, const std::string& sql, int busy_ms) {
  sqlite3* conn = nullptr;
  int rc = sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr);
  std::string out;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(conn, busy_ms);
    sqlite3_stmt* st = nullptr;
    rc = sqlite3_prepare_v2(conn, sql.c_str(), -1, &st, nullptr);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(st, 0);
        out = text != nullptr ? reinterpret_cast<const char*>(text) : "";
        rc = SQLITE_OK;
      } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
      }
    }
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_OK) out = std::string("error: ") + sqlite3_errmsg(conn);
  sqlite3_close(conn);
  return out;
}

void check_clean_end(Spawnd& s) {
  const bool has_no_zombies =
      wait_until([&] { return zombie_children_of(s.pid()).empty(); }, std::chrono::milliseconds(5'000));
  INFO("zombie children of spawnd: " << zombie_children_of(s.pid()).size());
  CHECK(has_no_zombies);
  const int status = s.stop();
  const std::string log = s.stderr_text();
  INFO("spawnd's stderr:\n" << log);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(log.find("Sanitizer") == std::string::npos);
  CHECK(log.find("runtime error:") == std::string::npos);
}

double metric_sample(const std::string& page, std::string_view series) {
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  }
  return 0;
}

bool hang_up_and_wait(Spawnd& s, int count) {
  ::kill(s.pid(), SIGHUP);
  return wait_until(
      [&] {
        const std::string err = s.stderr_text();
        int lines = 0;
        for (std::size_t at = 0; (at = err.find("spawnd: ", at)) != std::string::npos; ++at) {
          const std::string_view rest = std::string_view(err).substr(at);
          if (rest.starts_with("spawnd: info: reload: configuration") || rest.starts_with("spawnd: error: reload:"))
            ++lines;
        }
        return lines >= count;
      },
      std::chrono::seconds(10));
}

}  // namespace spawnd::e2e
