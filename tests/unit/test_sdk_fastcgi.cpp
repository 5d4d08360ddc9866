// The example handlers run as FastCGI applications (handlers/sdk/src/fastcgi_runtime.cpp), driven by a small
// FastCGI client built from common/fcgi_record.h, as a web server would drive them: a listening unix socket on fd 0
// (FCGI_LISTENSOCK_FILENO), or `--fastcgi unix:PATH` / `--fastcgi 127.0.0.1:0`. What comes back on FCGI_STDOUT must
// be byte-for-byte what the same executable prints as CGI for the same meta-variables and body. Tagged [cgi-child]
// like test_sdk_fork_server.cpp: these start processes and write a temporary SQLite database.
//
// Every wait is bounded, and every process the test starts is reaped (FastCgiProcess kills what is still running).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/fcgi_record.h"
#include "common/fd.h"
#include "db/database.h"
#include "handler_process.h"
#include "pragmas/presets.h"

namespace {

namespace fcgi = spawnd::fcgi;
using spawnd::Fd;
using spawnd::test::CgiResult;
using spawnd::test::TempSite;
using spawnd::test::read_file;
using Env = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

constexpr int kTimeoutMs = 10'000;

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof sa.sun_path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

// A listening unix socket at `path`, as spawnd's process manager or spawn-fcgi would make it.
Fd listen_unix(const std::string& path) {
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_un sa = unix_address(path);
  REQUIRE(bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(listen(fd.get(), 64) == 0);
  return fd;
}

// One handler executable running as a FastCGI application: stdout /dev/null, stderr a file we can read, the site's
// SPAWND_DB and SPAWND_PRAGMAS in its environment.
class FastCgiProcess {
 public:
  // With `listen_fd` on fd 0 (and `args` empty), or with `args` (e.g. --fastcgi ADDR) and /dev/null on fd 0.
  FastCgiProcess(const std::string& name, const TempSite& site, int listen_fd, std::vector<std::string> args = {})
      : name_(name), stderr_path_(site.dir() + "/" + name + "-" + std::to_string(++count_) + ".stderr") {
    int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(err_fd >= 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (listen_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, listen_fd, 0);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    const std::string path = spawnd::test::handler_path(name);
    spawnd::test::EnvStrings envp(
        {{"PATH", "/usr/bin:/bin"}, {"SPAWND_DB", site.db_path()}, {"SPAWND_PRAGMAS", site.pragmas_path()}});
    args.insert(args.begin(), path);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv.data(), envp.pointers.data());
    posix_spawn_file_actions_destroy(&fa);
    close(err_fd);
    if (rc != 0) pid_ = -1;
    INFO("spawning " << path << ": " << std::strerror(rc));
    REQUIRE(rc == 0);
  }
  FastCgiProcess(const FastCgiProcess&) = delete;
  FastCgiProcess& operator=(const FastCgiProcess&) = delete;
  ~FastCgiProcess() {
    if (pid_ > 0 && wait_exit(0) < 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string stderr_text() const { return read_file(stderr_path_); }

  // Sends `sig` and waits for the exit. Returns the wait status, or -1 on timeout.
  int signal_and_wait(int sig) {
    kill(pid_, sig);
    return wait_exit(kTimeoutMs);
  }
  // Waits (bounded) until the process has installed its SIGTERM handler (SigCgt in /proc/PID/status), i.e. its
  // runtime is set up: a SIGTERM before that would kill it with the default action. Returns whether it did.
  bool wait_catching_sigterm() {
    const auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
    while (Clock::now() < deadline) {
      std::string status = read_file("/proc/" + std::to_string(pid_) + "/status");
      auto at = status.find("SigCgt:\t");
      if (at != std::string::npos &&
          (std::stoull(status.substr(at + 8, 16), nullptr, 16) & (1ull << (SIGTERM - 1))) != 0)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  // Waits up to `timeout_ms` for the exit. Returns the wait status, or -1 if still running.
  int wait_exit(int timeout_ms) {
    if (pid_ <= 0) return -1;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 || Clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Waits for `text` in its stderr (e.g. the "listening on" line); returns the stderr so far.
  std::string wait_for_stderr(const std::string& text) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
    std::string err = stderr_text();
    while (err.find(text) == std::string::npos && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      err = stderr_text();
    }
    return err;
  }

 private:
  static inline int count_ = 0;
  std::string name_;
  std::string stderr_path_;
  pid_t pid_ = -1;
};

struct OwnedRecord {
  std::uint8_t type = 0;
  std::uint16_t request_id = 0;
  std::string content;
  [[nodiscard]] bool is(fcgi::RecordType t) const { return type == static_cast<std::uint8_t>(t); }
};

// The web-server side of one FastCGI connection.
class Client {
 public:
  static Client to_unix(const std::string& path) {
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_un sa = unix_address(path);
    REQUIRE(connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    return Client(std::move(fd));
  }
  static Client to_tcp(std::uint16_t port) {
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    return Client(std::move(fd));
  }

  void send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      sent += static_cast<size_t>(n);
    }
  }

  // The next record, or nullopt if the application closed the connection (or nothing came within the timeout:
  // `is_closed` tells them apart).
  std::optional<OwnedRecord> next() {
    for (;;) {
      fcgi::Record r;
      fcgi::RecordReader::Status s = reader_.next(r);
      REQUIRE(s != fcgi::RecordReader::Status::Malformed);
      if (s == fcgi::RecordReader::Status::Record) return OwnedRecord{r.type, r.request_id, std::string(r.content)};
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, kTimeoutMs) != 1) {
        is_closed_ = false;
        return std::nullopt;
      }
      char buf[65536];
      ssize_t n = read(fd_.get(), buf, sizeof buf);
      if (n <= 0) {
        is_closed_ = true;
        return std::nullopt;
      }
      reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  // True if the application closes the connection before sending anything more.
  bool is_closed_by_peer() { return !next() && is_closed_; }

 private:
  explicit Client(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
  fcgi::RecordReader reader_;
  bool is_closed_ = false;
};

std::string params_stream(std::uint16_t id, const Env& env) {
  std::string params, out;
  for (const auto& [name, value] : env) fcgi::append_name_value(params, name, value);
  fcgi::append_stream(out, fcgi::RecordType::Params, id, params);
  fcgi::append_stream_end(out, fcgi::RecordType::Params, id);
  return out;
}

// A whole responder request: FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN (split into records of at most 65535
// bytes by the codec), each stream with its empty end record.
std::string request_bytes(std::uint16_t id, const Env& env, const std::string& body = {},
                          std::uint8_t flags = 0) {
  std::string out;
  fcgi::append_begin_request(out, id, fcgi::Role::Responder, flags);
  out += params_stream(id, env);
  fcgi::append_stream(out, fcgi::RecordType::Stdin, id, body);
  fcgi::append_stream_end(out, fcgi::RecordType::Stdin, id);
  return out;
}

struct FastCgiResult {
  CgiResult cgi;             // FCGI_STDOUT as a CGI response: stdout_bytes, status, headers, body
  int stdout_records = 0;    // non-empty FCGI_STDOUT records
  bool has_stdout_end = false;
  std::optional<fcgi::EndRequestBody> end;
};

// Reads the records of request `id` up to its FCGI_END_REQUEST; records of other ids fail the test.
FastCgiResult read_reply(Client& c, std::uint16_t id) {
  FastCgiResult r;
  while (!r.end) {
    std::optional<OwnedRecord> rec = c.next();
    REQUIRE(rec);
    REQUIRE(rec->request_id == id);
    if (rec->is(fcgi::RecordType::Stdout)) {
      CHECK_FALSE(r.has_stdout_end);
      if (rec->content.empty()) r.has_stdout_end = true;
      else ++r.stdout_records;
      r.cgi.stdout_bytes += rec->content;
    } else {
      REQUIRE(rec->is(fcgi::RecordType::EndRequest));
      r.end = fcgi::parse_end_request(rec->content);
      REQUIRE(r.end);
    }
  }
  spawnd::test::parse_cgi_output(r.cgi);
  return r;
}

// One request on `c`, answered completely (FCGI_STDOUT ended, FCGI_REQUEST_COMPLETE).
FastCgiResult exchange(Client& c, std::uint16_t id, const Env& env, const std::string& body = {},
                       std::uint8_t flags = 0) {
  c.send(request_bytes(id, env, body, flags));
  FastCgiResult r = read_reply(c, id);
  CHECK(r.has_stdout_end);
  CHECK(r.end->protocol_status == fcgi::ProtocolStatus::RequestComplete);
  CHECK(r.end->app_status == 0);
  return r;
}

// A handler process on a listening unix socket at fd 0, and a client for each connection.
struct Fixture {
  explicit Fixture(const std::string& name)
      : socket_path(site.dir() + "/" + name + ".sock"), listener(listen_unix(socket_path)),
        app(name, site, listener.get()) {}
  Client connect() { return Client::to_unix(socket_path); }

  TempSite site;
  std::string socket_path;
  Fd listener;
  FastCgiProcess app;
};

// One request on a fresh connection, without FCGI_KEEP_CONN, compared with the same executable run as CGI with the
// same meta-variables and body.
FastCgiResult same_as_cgi(Fixture& f, const std::string& name, const Env& env, const std::string& body = {}) {
  Client c = f.connect();
  FastCgiResult r = exchange(c, 1, env, body);
  CHECK(c.is_closed_by_peer());  // §5.1: no FCGI_KEEP_CONN, so the application closes
  CgiResult cgi = spawnd::test::run_cgi(name, env, body);
  CHECK(r.cgi.stdout_bytes == cgi.stdout_bytes);
  return r;
}

int count_rows(const TempSite& site, const char* sql) {
  auto conn = spawnd::db::Connection::open(site.db_path(), spawnd::pragmas::find_preset(site.pragmas_path()));
  auto st = conn.prepare(sql);
  REQUIRE(st.step());
  return static_cast<int>(st.column_int64(0));
}

std::uint16_t port_of(const std::string& listening_line_text) {
  const std::string marker = "listening on 127.0.0.1:";
  size_t at = listening_line_text.find(marker);
  REQUIRE(at != std::string::npos);
  return static_cast<std::uint16_t>(std::stoi(listening_line_text.substr(at + marker.size())));
}

const char* const kForm = "application/x-www-form-urlencoded";

}  // namespace

TEST_CASE("hello over FastCGI on fd 0 answers what it answers as CGI", "[cgi-child][fastcgi]") {
  Fixture f("hello");
  FastCgiResult r = same_as_cgi(f, "hello", f.site.env("hello", "GET"));
  CHECK(r.cgi.status == 200);
  CHECK(r.cgi.body == "Hello, world!\n");
  same_as_cgi(f, "hello", f.site.env("hello", "HEAD"));
  // A body, a body longer than CONTENT_LENGTH (the rest is ignored, as by a CGI process), a shorter one (400) and
  // a malformed CONTENT_LENGTH (400).
  auto e = f.site.env_with_body("hello", "POST", "text/plain", "0123456789");
  same_as_cgi(f, "hello", e, "0123456789");
  same_as_cgi(f, "hello", e, "0123456789 and more");
  e["CONTENT_LENGTH"] = "100";
  CHECK(same_as_cgi(f, "hello", e, "0123456789").cgi.status == 400);
  e["CONTENT_LENGTH"] = "12x";
  CHECK(same_as_cgi(f, "hello", e, "0123456789").cgi.status == 400);
  // hello never opens the database, here either; the process is still the same one and has logged nothing.
  CHECK_FALSE(std::filesystem::exists(f.site.db_path()));
  CHECK(f.app.wait_exit(0) == -1);
  CHECK(f.app.stderr_text().empty());
}

TEST_CASE("env over FastCGI sees exactly the FCGI_PARAMS as its meta-variables", "[cgi-child][fastcgi]") {
  Fixture f("env");
  auto e = f.site.env("env", "GET", "/extra", "q=%3Cscript%3E&x=1");
  e["HTTP_COOKIE"] = "sid=<b>";
  FastCgiResult r = same_as_cgi(f, "env", e);
  CHECK(r.cgi.status == 200);
  CHECK(r.cgi.body.find("<tr><th>PATH_INFO</th><td>/extra</td></tr>") != std::string::npos);
  // The process's own environment is not the request's.
  CHECK(r.cgi.body.find("<th>PATH</th>") == std::string::npos);
}

TEST_CASE("guestbook GET and POST over FastCGI match CGI and write the database", "[cgi-child][fastcgi]") {
  Fixture f("guestbook");
  Client first = f.connect();
  FastCgiResult page = exchange(first, 1, f.site.env("guestbook", "GET"));
  INFO(f.app.stderr_text());
  CHECK(page.cgi.status == 200);
  same_as_cgi(f, "guestbook", f.site.env("guestbook", "GET"));

  const std::string body = "name=%3Cb%3EFast%3C%2Fb%3E&message=over+FastCGI";
  auto post = f.site.env_with_body("guestbook", "POST", kForm, body);
  FastCgiResult r = same_as_cgi(f, "guestbook", post, body);  // one POST each way
  CHECK(r.cgi.status == 303);
  CHECK(r.cgi.header("location") == "/cgi-bin/guestbook");
  CHECK(count_rows(f.site, "SELECT count(*) FROM guestbook WHERE name = '<b>Fast</b>'") == 2);

  FastCgiResult after = same_as_cgi(f, "guestbook", f.site.env("guestbook", "GET"));
  CHECK(after.cgi.body.find("&lt;b&gt;Fast&lt;/b&gt;") != std::string::npos);
  CHECK(after.cgi.body.find("<b>Fast") == std::string::npos);
  // A body over the handler's limit (64 KiB) is refused with 413, after its FCGI_STDIN records were read.
  const std::string big = "name=x&message=" + std::string(100'000, 'm');
  CHECK(same_as_cgi(f, "guestbook", f.site.env_with_body("guestbook", "POST", kForm, big), big).cgi.status == 413);
  CHECK(f.app.wait_exit(0) == -1);
}

TEST_CASE("kv: a value longer than 65535 bytes arrives over several FCGI_STDIN records and leaves over several "
          "FCGI_STDOUT records", "[cgi-child][fastcgi]") {
  Fixture f("kv");
  const std::string value = "\"" + std::string(200'000, 'v') + "\"";
  Client c = f.connect();
  FastCgiResult put = exchange(c, 7, f.site.env_with_body("kv", "PUT", "application/json", value, "/big"), value);
  INFO(f.app.stderr_text());
  CHECK(put.cgi.status == 201);
  FastCgiResult get = same_as_cgi(f, "kv", f.site.env("kv", "GET", "/big"));
  CHECK(get.cgi.status == 200);
  CHECK(get.cgi.body == value);
  CHECK(get.stdout_records >= 4);  // 200 KB in records of at most 65535 bytes
  // Written over FastCGI, read by CGI, and the other way round.
  CHECK(spawnd::test::run_cgi("kv", f.site.env("kv", "GET", "/big")).body == value);
  CHECK(spawnd::test::run_cgi("kv", f.site.env_with_body("kv", "PUT", "application/json", "7", "/cgi"), "7").status ==
        201);
  CHECK(same_as_cgi(f, "kv", f.site.env("kv", "GET", "/cgi")).cgi.body == "7");
  same_as_cgi(f, "kv", f.site.env("kv", "GET", "/missing"));
}

TEST_CASE("FCGI_KEEP_CONN keeps the connection for the next request, without it the application closes it",
          "[cgi-child][fastcgi]") {
  Fixture f("guestbook");
  Client c = f.connect();
  for (std::uint16_t id = 1; id <= 3; ++id) {
    const std::string body = "name=keep" + std::to_string(id) + "&message=conn";
    CHECK(exchange(c, id, f.site.env_with_body("guestbook", "POST", kForm, body), body, fcgi::kKeepConn)
              .cgi.status == 303);
  }
  // The same request id again, once the first is over, is a new request.
  FastCgiResult page = exchange(c, 1, f.site.env("guestbook", "GET"), {}, fcgi::kKeepConn);
  CHECK(page.cgi.status == 200);
  CHECK(page.cgi.body.find("keep3") != std::string::npos);
  // The last one without the flag: answered, then the connection is closed.
  exchange(c, 2, f.site.env("guestbook", "GET"));
  CHECK(c.is_closed_by_peer());
  CHECK(count_rows(f.site, "SELECT count(*) FROM guestbook WHERE name LIKE 'keep%'") == 3);
}

TEST_CASE("management records: FCGI_GET_VALUES answers what was asked, unknown types get FCGI_UNKNOWN_TYPE",
          "[cgi-child][fastcgi]") {
  Fixture f("hello");
  Client c = f.connect();
  std::string ask, bytes;
  fcgi::append_name_value(ask, fcgi::kMaxConns, "");
  fcgi::append_name_value(ask, "SOMETHING_ELSE", "");
  fcgi::append_name_value(ask, fcgi::kMpxsConns, "");
  fcgi::append_name_value(ask, fcgi::kMpxsConns, "");
  fcgi::append_record(bytes, fcgi::RecordType::GetValues, fcgi::kNullRequestId, ask);
  c.send(bytes);
  std::optional<OwnedRecord> result = c.next();
  REQUIRE(result);
  CHECK(result->is(fcgi::RecordType::GetValuesResult));
  CHECK(result->request_id == fcgi::kNullRequestId);
  auto pairs = fcgi::parse_name_values(result->content);
  REQUIRE(pairs);
  using Pair = std::pair<std::string_view, std::string_view>;
  CHECK(*pairs == std::vector<Pair>{{fcgi::kMaxConns, "1"}, {fcgi::kMpxsConns, "0"}});

  bytes.clear();
  fcgi::append_record(bytes, fcgi::RecordType::GetValues, fcgi::kNullRequestId, {});
  fcgi::append_record(bytes, static_cast<fcgi::RecordType>(200), fcgi::kNullRequestId, "whatever");
  c.send(bytes);
  result = c.next();
  REQUIRE(result);
  CHECK(result->is(fcgi::RecordType::GetValuesResult));
  CHECK(result->content.empty());
  result = c.next();
  REQUIRE(result);
  CHECK(result->is(fcgi::RecordType::UnknownType));
  CHECK(result->request_id == fcgi::kNullRequestId);
  REQUIRE(result->content.size() == 8);  // FCGI_UnknownTypeBody: type, then 7 reserved bytes (§4.2)
  CHECK(static_cast<unsigned char>(result->content[0]) == 200);
  // The connection is still in service.
  CHECK(exchange(c, 1, f.site.env("hello", "GET")).cgi.status == 200);
}

TEST_CASE("FCGI_UNKNOWN_ROLE for other roles, FCGI_CANT_MPX_CONN for a second request, FCGI_ABORT_REQUEST before "
          "the handler ran", "[cgi-child][fastcgi]") {
  Fixture f("guestbook");
  Client c = f.connect();
  // Make the schema, so that rows can be counted.
  REQUIRE(exchange(c, 1, f.site.env("guestbook", "GET"), {}, fcgi::kKeepConn).cgi.status == 200);

  SECTION("an authorizer or filter request is refused; the connection stays for a responder request") {
    for (fcgi::Role role : {fcgi::Role::Authorizer, fcgi::Role::Filter}) {
      std::string bytes;
      fcgi::append_begin_request(bytes, 5, role, fcgi::kKeepConn);
      bytes += params_stream(5, f.site.env("guestbook", "GET"));
      c.send(bytes);
      FastCgiResult r = read_reply(c, 5);
      CHECK(r.end->protocol_status == fcgi::ProtocolStatus::UnknownRole);
      CHECK(r.cgi.stdout_bytes.empty());
    }
    CHECK(exchange(c, 6, f.site.env("guestbook", "GET")).cgi.status == 200);
    CHECK(c.is_closed_by_peer());
  }

  SECTION("a second request id while one is in progress gets FCGI_CANT_MPX_CONN; the first is served") {
    const std::string body = "name=first&message=one";
    std::string bytes;
    fcgi::append_begin_request(bytes, 1, fcgi::Role::Responder, fcgi::kKeepConn);
    bytes += params_stream(1, f.site.env_with_body("guestbook", "POST", kForm, body));
    // The intruder, with a stream of its own that must be ignored.
    bytes += request_bytes(2, f.site.env_with_body("guestbook", "POST", kForm, "name=second&message=two"),
                           "name=second&message=two");
    c.send(bytes);
    std::optional<OwnedRecord> refused = c.next();
    REQUIRE(refused);
    CHECK(refused->is(fcgi::RecordType::EndRequest));
    CHECK(refused->request_id == 2);
    CHECK(fcgi::parse_end_request(refused->content)->protocol_status == fcgi::ProtocolStatus::CantMpxConn);
    bytes.clear();
    fcgi::append_stream(bytes, fcgi::RecordType::Stdin, 1, body);
    fcgi::append_stream_end(bytes, fcgi::RecordType::Stdin, 1);
    c.send(bytes);
    FastCgiResult r = read_reply(c, 1);
    CHECK(r.cgi.status == 303);
    CHECK(count_rows(f.site, "SELECT count(*) FROM guestbook WHERE name = 'first'") == 1);
    CHECK(count_rows(f.site, "SELECT count(*) FROM guestbook WHERE name = 'second'") == 0);
  }

  SECTION("FCGI_ABORT_REQUEST ends the request without calling the handler") {
    const std::string body = "name=aborted&message=never";
    std::string bytes;
    fcgi::append_begin_request(bytes, 3, fcgi::Role::Responder, 0);
    bytes += params_stream(3, f.site.env_with_body("guestbook", "POST", kForm, body));
    fcgi::append_stream(bytes, fcgi::RecordType::Stdin, 3, body.substr(0, 5));
    fcgi::append_abort_request(bytes, 3);
    c.send(bytes);
    FastCgiResult r = read_reply(c, 3);
    CHECK(r.end->protocol_status == fcgi::ProtocolStatus::RequestComplete);
    CHECK(r.cgi.stdout_bytes.empty());
    CHECK_FALSE(r.has_stdout_end);
    CHECK(c.is_closed_by_peer());  // no FCGI_KEEP_CONN
    CHECK(count_rows(f.site, "SELECT count(*) FROM guestbook WHERE name = 'aborted'") == 0);
  }
  CHECK(f.app.stderr_text().empty());
}

TEST_CASE("FCGI_PARAMS over 1 MiB gets 431 and the process carries on", "[cgi-child][fastcgi]") {
  Fixture f("hello");
  Client c = f.connect();
  auto e = f.site.env("hello", "GET");
  e["HTTP_X_HUGE"] = std::string(1'100'000, 'h');
  FastCgiResult r = exchange(c, 1, e, {}, fcgi::kKeepConn);
  CHECK(r.cgi.status == 431);
  CHECK(exchange(c, 2, f.site.env("hello", "GET")).cgi.status == 200);
}

TEST_CASE("malformed records close that connection only, and the process serves the next one", "[cgi-child][fastcgi]") {
  Fixture f("hello");
  const Env env = f.site.env("hello", "GET");
  auto begin = [](std::uint16_t id) {
    std::string b;
    fcgi::append_begin_request(b, id, fcgi::Role::Responder, fcgi::kKeepConn);
    return b;
  };
  std::string bad_version = begin(1);
  bad_version[0] = 2;
  std::string short_begin;
  fcgi::append_record(short_begin, fcgi::RecordType::BeginRequest, 1, std::string("\0\1\0\0\0", 5));
  std::string bad_lengths = begin(1);
  fcgi::append_record(bad_lengths, fcgi::RecordType::Params, 1, "\x05\x01" "ab");
  fcgi::append_stream_end(bad_lengths, fcgi::RecordType::Params, 1);
  std::string stdin_first = begin(1);
  fcgi::append_stream(stdin_first, fcgi::RecordType::Stdin, 1, "x");
  std::string twice = begin(1) + begin(1);
  std::string params_after_end = begin(1) + params_stream(1, env);
  fcgi::append_stream(params_after_end, fcgi::RecordType::Params, 1, "\x01\x01" "ab");
  std::string bad_get_values;
  fcgi::append_record(bad_get_values, fcgi::RecordType::GetValues, fcgi::kNullRequestId, "\x7f");

  const std::pair<const char*, std::string> rows[] = {
      {"version 2", bad_version},
      {"FCGI_BEGIN_REQUEST body of 5 bytes", short_begin},
      {"FCGI_PARAMS name length past the end", bad_lengths},
      {"FCGI_STDIN before FCGI_PARAMS ended", stdin_first},
      {"FCGI_BEGIN_REQUEST twice for one id", twice},
      {"FCGI_PARAMS after its end", params_after_end},
      {"FCGI_GET_VALUES with a truncated pair", bad_get_values},
  };
  for (const auto& [why, bytes] : rows) {
    INFO(why);
    Client c = f.connect();
    c.send(bytes);
    CHECK(c.is_closed_by_peer());
    Client next = f.connect();
    CHECK(exchange(next, 1, env).cgi.body == "Hello, world!\n");
  }
  CHECK(f.app.wait_exit(0) == -1);
  const std::string log = f.app.stderr_text();
  INFO(log);
  CHECK(std::count(log.begin(), log.end(), '\n') == static_cast<long>(std::size(rows)));
  CHECK(log.starts_with("handler hello: fastcgi: "));
  CHECK(log.find("closing the connection") != std::string::npos);
}

TEST_CASE("processes sharing one listening socket on fd 0 serve every connection", "[cgi-child][fastcgi]") {
  Fixture f("hello");
  FastCgiProcess second("hello", f.site, f.listener.get());
  // Under a sanitizer the second process can still be starting when the 40 requests are done (the first serves
  // them all); its SIGTERM must find it set up.
  REQUIRE(second.wait_catching_sigterm());
  int ok = 0;
  for (int i = 0; i < 40; ++i) {
    Client c = f.connect();
    if (exchange(c, 1, f.site.env("hello", "GET")).cgi.body == "Hello, world!\n") ++ok;
  }
  CHECK(ok == 40);
  CHECK(second.signal_and_wait(SIGTERM) == 0);
  CHECK(f.app.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("SIGTERM: an idle process exits 0, a request in progress is answered first", "[cgi-child][fastcgi]") {
  SECTION("waiting in accept") {
    Fixture f("hello");
    Client c = f.connect();  // a round trip, so that the process is surely up and waiting
    exchange(c, 1, f.site.env("hello", "GET"));
    const int status = f.app.signal_and_wait(SIGTERM);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  SECTION("waiting for the next request on a kept connection") {
    Fixture f("hello");
    Client c = f.connect();
    exchange(c, 1, f.site.env("hello", "GET"), {}, fcgi::kKeepConn);
    CHECK(f.app.signal_and_wait(SIGTERM) == 0);
    CHECK(c.is_closed_by_peer());
  }
  SECTION("in the middle of a request") {
    Fixture f("guestbook");
    const std::string body = "name=last&message=before+SIGTERM";
    Client c = f.connect();
    std::string bytes;
    fcgi::append_begin_request(bytes, 1, fcgi::Role::Responder, 0);
    bytes += params_stream(1, f.site.env_with_body("guestbook", "POST", kForm, body));
    fcgi::append_stream(bytes, fcgi::RecordType::Stdin, 1, body.substr(0, 10));
    // A management record behind them: once its answer is back, the records before it have been read.
    fcgi::append_record(bytes, fcgi::RecordType::GetValues, fcgi::kNullRequestId, {});
    c.send(bytes);
    std::optional<OwnedRecord> sync = c.next();
    REQUIRE(sync);
    REQUIRE(sync->is(fcgi::RecordType::GetValuesResult));
    kill(f.app.pid(), SIGTERM);
    CHECK(f.app.wait_exit(200) == -1);  // still there, waiting for the rest of the body
    bytes.clear();
    fcgi::append_stream(bytes, fcgi::RecordType::Stdin, 1, body.substr(10));
    fcgi::append_stream_end(bytes, fcgi::RecordType::Stdin, 1);
    c.send(bytes);
    CHECK(read_reply(c, 1).cgi.status == 303);
    CHECK(f.app.wait_exit(kTimeoutMs) == 0);
    CHECK(count_rows(f.site, "SELECT count(*) FROM guestbook WHERE name = 'last'") == 1);
  }
}

TEST_CASE("the --fastcgi unix:PATH flag listens there, replacing a stale socket file but nothing else", "[cgi-child][fastcgi]") {
  TempSite site;
  const std::string path = site.dir() + "/kv.sock";
  { Fd stale = listen_unix(path); }  // closed: the file stays, and nobody listens on it
  FastCgiProcess app("kv", site, -1, {"--fastcgi", "unix:" + path});
  std::string err = app.wait_for_stderr("listening on");
  CHECK(err == "handler kv: fastcgi: listening on unix:" + path + "\n");
  Client c = Client::to_unix(path);
  const std::string value = R"({"via":"--fastcgi"})";
  CHECK(exchange(c, 1, site.env_with_body("kv", "PUT", "application/json", value, "/k"), value, fcgi::kKeepConn)
            .cgi.status == 201);
  CHECK(exchange(c, 2, site.env("kv", "GET", "/k")).cgi.body == value);

  // A second process on the same, live, socket refuses to take it over.
  FastCgiProcess intruder("kv", site, -1, {"--fastcgi", "unix:" + path});
  CHECK(intruder.wait_exit(kTimeoutMs) == 1 << 8);
  CHECK(intruder.stderr_text().find("another process is listening") != std::string::npos);
  CHECK(app.signal_and_wait(SIGTERM) == 0);

  const std::string regular = site.dir() + "/not-a-socket";
  std::ofstream(regular) << "keep me";
  FastCgiProcess refused("kv", site, -1, {"--fastcgi", "unix:" + regular});
  CHECK(refused.wait_exit(kTimeoutMs) == 1 << 8);
  CHECK(refused.stderr_text().find("exists and is not a socket") != std::string::npos);
  CHECK(read_file(regular) == "keep me");
}

TEST_CASE("the --fastcgi 127.0.0.1:0 flag listens on a free port and says which", "[cgi-child][fastcgi]") {
  TempSite site;
  FastCgiProcess app("hello", site, -1, {"--fastcgi", "127.0.0.1:0"});
  const std::uint16_t port = port_of(app.wait_for_stderr("listening on"));
  Client c = Client::to_tcp(port);
  FastCgiResult r = exchange(c, 1, site.env("hello", "GET"));
  CHECK(r.cgi.stdout_bytes == spawnd::test::run_cgi("hello", site.env("hello", "GET")).stdout_bytes);
  CHECK(app.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("a bad --fastcgi address exits 2 with one line", "[cgi-child][fastcgi]") {
  TempSite site;
  const std::vector<std::vector<std::string>> bad = {
      {"--fastcgi"}, {"--fastcgi", "nonsense"}, {"--fastcgi", "unix:"}, {"--fastcgi", "127.0.0.1:"},
      {"--fastcgi", "127.0.0.1:99999"}, {"--fastcgi", ":9000"}, {"--fastcgi", "127.0.0.1:9x"}, {"--fastcgi", "localhost:9000"}, {"--fastcgi", "::1:9000"},
      {"--fastcgi", "unix:" + std::string(200, 'p')}, {"--fastcgi", "unix:/a", "extra"}};
  for (const auto& args : bad) {
    INFO(args.back());
    FastCgiProcess app("hello", site, -1, args);
    CHECK(app.wait_exit(kTimeoutMs) == 2 << 8);
    const std::string err = app.stderr_text();
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}
