// fastcgi_runtime.cpp — the FastCGI runtime: the handler executable as a FastCGI 1.0 application in the responder
// role (FastCGI Specification, Open Market 1996, §6.2), for spawnd's FastCGI mode, nginx `fastcgi_pass` or
// spawn-fcgi. Records are decoded and encoded with common/fcgi_record.h; a request ends exactly as under CGI
// (answer() in runtime.cpp), so the bytes on FCGI_STDOUT are the bytes a CGI process would print.
//
// One process, one thread, one connection at a time: a blocking accept, then the connection's records until the
// web server closes it, or until FCGI_END_REQUEST of a request without FCGI_KEEP_CONN (§5.1). Several processes
// may share one listening socket (php-fpm style); each takes the next connection when it is free. We say so in
// FCGI_GET_VALUES: FCGI_MAX_CONNS=1, FCGI_MAX_REQS=1, FCGI_MPXS_CONNS=0, and a second FCGI_BEGIN_REQUEST on a
// connection with a request in progress gets FCGI_CANT_MPX_CONN.
//
// The Context lives as long as the process, so the database connection and its prepared statements serve every
// request. Its DbConfig comes from the process environment only (SPAWND_DB, SPAWND_PRAGMAS as spawnd's process
// manager or spawn-fcgi set them), never from FCGI_PARAMS: a request must not re-point the process's database.
//
// A bad request never ends the process: a malformed record (version not 1, a BEGIN_REQUEST body of the wrong size,
// name-value lengths running past the end, a stream record out of order) logs one line and closes that connection;
// the process goes back to accept. SIGTERM is the only way out: a process waiting for a connection or for the next
// record of an idle connection exits 0 at once; one with a request in progress finishes it first. The signal
// reaches poll() through a self-pipe, so there is no window in which it is set but a wait blocks anyway.
#include <spawnd/runtime.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "common/fcgi_record.h"
#include "common/fd.h"
#include "common/net_addr.h"
#include "common/result.h"
#include "common/sys.h"
#include "log_line.h"

namespace spawnd::sdk {

namespace {

// The whole FCGI_PARAMS stream of one request. nginx sends a few KiB; beyond this the request gets 431 (its
// meta-variables are never parsed) rather than growing the process without bound.
constexpr size_t kMaxParamsBytes = size_t{1} << 20;
constexpr size_t kReadBufferBytes = size_t{64} << 10;
// After EMFILE & co. from accept: the connection stays queued, and retrying at once would spin.
constexpr int kAcceptPauseMs = 100;

// SIGTERM: the handler sets the flag and writes one byte to the self-pipe, which is never drained, so from then on
// every idle wait returns at once.
volatile sig_atomic_t g_is_stop_requested = 0;
int g_wake_write_fd = -1;

void on_sigterm(int) {
  const int saved_errno = errno;
  g_is_stop_requested = 1;
  const char byte = 1;
  [[maybe_unused]] ssize_t rc = ::write(g_wake_write_fd, &byte, 1);
  errno = saved_errno;
}

// One line on stderr, "handler NAME: fastcgi: <message>" (detail::vlog_line, as Context::log).
void log_line(const std::string& name, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void log_line(const std::string& name, const char* fmt, ...) {
  std::string prefix = "handler " + name + ": fastcgi: ";
  va_list ap;
  va_start(ap, fmt);
  detail::vlog_line(prefix, fmt, ap);
  va_end(ap);
}

class FastCgiServer {
 public:
  FastCgiServer(const HandlerInfo& info, const char* argv0, int listen_fd)
      : info_(info), name_(handler_name(info, argv0)), listen_fd_(listen_fd),
        ctx_(info, name_, db_config_from({})) {}

  int run();

 private:
  enum class Next { Continue, Close };
  enum class Wait { Readable, Stop, Failed };

  // The request in progress on the connection (id 0: none).
  struct Current {
    std::uint16_t id = 0;
    bool keep_conn = false;
    std::string params;       // the FCGI_PARAMS stream so far
    bool is_params_over_limit = false;
    bool has_params = false;  // the FCGI_PARAMS stream has ended
    bool has_stdin = false;   // the FCGI_STDIN stream has ended
    MetaVars meta;
    size_t body_length = 0;   // CONTENT_LENGTH
    std::string body;
    EarlyError early;
  };

  [[nodiscard]] bool set_up();
  // Waits until `fd` is readable or SIGTERM came (checked first, so a stop is never missed).
  [[nodiscard]] Wait wait_readable(int fd, int timeout_ms = -1);
  void serve(int fd);
  [[nodiscard]] Next on_record(const fcgi::Record& record);
  [[nodiscard]] Next on_management(const fcgi::Record& record);
  [[nodiscard]] Next on_begin_request(const fcgi::Record& record);
  [[nodiscard]] Next on_params(std::string_view content);
  [[nodiscard]] Next on_stdin(std::string_view content);
  // Sends `reply` (if any) as FCGI_STDOUT, then FCGI_END_REQUEST, and forgets the current request.
  [[nodiscard]] Next end_current(const CgiReply* reply);
  // Writes out_ to the connection. False if the connection is gone.
  [[nodiscard]] bool flush();
  [[nodiscard]] Next protocol_error(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  const HandlerInfo& info_;
  std::string name_;
  int listen_fd_;
  Context ctx_;
  Fd wake_read_;
  Fd wake_write_;
  std::vector<char> read_buffer_;
  int conn_fd_ = -1;
  std::string out_;
  Current current_;
};

bool FastCgiServer::set_up() {
  int listening = 0;
  socklen_t len = sizeof listening;
  if (::getsockopt(listen_fd_, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) {
    log_line(name_, "fd %d is not a listening socket", listen_fd_);
    return false;
  }
  // fds 0..2 open, so that an accepted connection can never land on 1 or 2 and receive log lines (spawn-fcgi and
  // others may start us with them closed). fd 0 is usually the listening socket itself.
  for (int fd = 0; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF && ::open("/dev/null", O_RDWR) != fd) {
      log_line(name_, "cannot open /dev/null as fd %d", fd);
      return false;
    }
  }
  // Processes sharing the listening socket all wake up for one connection; the losers must get EAGAIN from accept,
  // not block in it where SIGTERM would find them busy. O_NONBLOCK is shared by every process holding the socket:
  // the others are runtimes like this one (or spawnd and spawn-fcgi, which never accept on it).
  if (!sys::set_nonblocking(listen_fd_)) {
    log_line(name_, "fcntl(%d, O_NONBLOCK): %s", listen_fd_, std::strerror(errno));
    return false;
  }
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    log_line(name_, "pipe2: %s", std::strerror(errno));
    return false;
  }
  wake_read_.reset(wake[0]);
  wake_write_.reset(wake[1]);
  g_wake_write_fd = wake[1];

  // A web server that goes away mid-response is EPIPE on that connection, never a signal that ends the process.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigemptyset(&ignore.sa_mask);
  // SA_RESTART: the handler's own blocking calls (SQLite's file I/O, our reads of a request in progress) carry on.
  struct sigaction term {};
  term.sa_handler = &on_sigterm;
  term.sa_flags = SA_RESTART;
  ::sigemptyset(&term.sa_mask);
  // Unblocked too, in case whoever started us had it blocked (a blocked mask survives exec).
  sigset_t term_set;
  ::sigemptyset(&term_set);
  ::sigaddset(&term_set, SIGTERM);
  if (::sigaction(SIGPIPE, &ignore, nullptr) != 0 || ::sigaction(SIGTERM, &term, nullptr) != 0 ||
      ::sigprocmask(SIG_UNBLOCK, &term_set, nullptr) != 0) {
    log_line(name_, "sigaction: %s", std::strerror(errno));
    return false;
  }
  read_buffer_.resize(kReadBufferBytes);
  return true;
}

FastCgiServer::Wait FastCgiServer::wait_readable(int fd, int timeout_ms) {
  pollfd fds[2] = {{wake_read_.get(), POLLIN, 0}, {fd, POLLIN, 0}};
  if (g_is_stop_requested != 0) return Wait::Stop;
  // A SIGTERM that interrupts poll() has written to the self-pipe: the retried poll() returns at once.
  const int n = sys::retry_eintr([&] { return ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms); });
  if (n < 0) {
    log_line(name_, "poll: %s", std::strerror(errno));
    return Wait::Failed;
  }
  if (fds[0].revents != 0) return Wait::Stop;
  return Wait::Readable;  // or the timeout: the caller retries its call either way
}

int FastCgiServer::run() {
  if (!set_up()) return 2;
  for (;;) {
    switch (wait_readable(listen_fd_)) {
      case Wait::Stop: return 0;
      case Wait::Failed: return 1;
      case Wait::Readable: break;
    }
    Fd conn(::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn) {
      serve(conn.get());
      continue;
    }
    const int err = errno;
    // Another process took the connection, or it was reset while queued, or a signal came: wait again.
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      log_line(name_, "accept: %s; pausing %d ms", std::strerror(err), kAcceptPauseMs);
      if (wait_readable(-1, kAcceptPauseMs) == Wait::Stop) return 0;
      continue;
    }
    log_line(name_, "accept on fd %d: %s", listen_fd_, std::strerror(err));
    return 1;
  }
}

void FastCgiServer::serve(int fd) {
  conn_fd_ = fd;
  current_ = Current{};
  out_.clear();
  fcgi::RecordReader reader;
  for (;;) {
    // Idle (no request in progress, no partial record): SIGTERM may close the connection here. Within a request
    // the read blocks; SA_RESTART resumes it after the signal, and the loop in run() stops once it is answered.
    if (current_.id == 0 && reader.buffered() == 0 && wait_readable(fd) != Wait::Readable) return;
    ssize_t n = sys::read(fd, read_buffer_.data(), read_buffer_.size());
    if (n == 0) return;  // the web server closed the connection (between requests, or giving up on one)
    if (n < 0) {
      if (errno != ECONNRESET) log_line(name_, "read: %s", std::strerror(errno));
      return;
    }
    reader.feed(std::string_view(read_buffer_.data(), static_cast<size_t>(n)));
    fcgi::Record record;
    for (;;) {
      fcgi::RecordReader::Status status = reader.next(record);
      if (status == fcgi::RecordReader::Status::NeedMore) break;
      if (status == fcgi::RecordReader::Status::Malformed) {
        (void)protocol_error("a record header whose version is not 1");
        return;
      }
      if (on_record(record) == Next::Close) return;
    }
  }
}

FastCgiServer::Next FastCgiServer::on_record(const fcgi::Record& record) {
  if (record.request_id == fcgi::kNullRequestId) return on_management(record);
  if (record.is(fcgi::RecordType::BeginRequest)) return on_begin_request(record);
  // §3.3: records of a request the application is not serving (ended, refused, never begun) are ignored.
  if (record.request_id != current_.id) return Next::Continue;
  if (record.is(fcgi::RecordType::Params)) return on_params(record.content);
  if (record.is(fcgi::RecordType::Stdin)) return on_stdin(record.content);
  // §5.4: the handler runs only once FCGI_STDIN is complete, within this loop, so an abort always comes before it:
  // end the request without calling it.
  if (record.is(fcgi::RecordType::AbortRequest)) return end_current(nullptr);
  return Next::Continue;  // FCGI_DATA belongs to the filter role; the rest only ever travel to the web server
}

FastCgiServer::Next FastCgiServer::on_management(const fcgi::Record& record) {
  if (!record.is(fcgi::RecordType::GetValues)) {
    fcgi::append_unknown_type(out_, record.type);  // §4.2
    return flush() ? Next::Continue : Next::Close;
  }
  auto pairs = fcgi::parse_name_values(record.content);
  if (!pairs) return protocol_error("FCGI_GET_VALUES with malformed name-value lengths");
  // §4.1: only the variables asked for, each once, and silence about the ones we do not know.
  std::string result;
  bool is_answered[3] = {false, false, false};
  const std::pair<std::string_view, std::string_view> known[3] = {
      {fcgi::kMaxConns, "1"}, {fcgi::kMaxReqs, "1"}, {fcgi::kMpxsConns, "0"}};
  for (const auto& pair : *pairs) {
    for (int i = 0; i < 3; ++i) {
      if (pair.first != known[i].first || is_answered[i]) continue;
      fcgi::append_name_value(result, known[i].first, known[i].second);
      is_answered[i] = true;
    }
  }
  fcgi::append_record(out_, fcgi::RecordType::GetValuesResult, fcgi::kNullRequestId, result);
  return flush() ? Next::Continue : Next::Close;
}

FastCgiServer::Next FastCgiServer::on_begin_request(const fcgi::Record& record) {
  const std::uint16_t id = record.request_id;
  std::optional<fcgi::BeginRequestBody> body = fcgi::parse_begin_request(record.content);
  if (!body) return protocol_error("FCGI_BEGIN_REQUEST %u with a %zu-byte body", id, record.content.size());
  if (current_.id != 0) {
    if (id == current_.id) return protocol_error("a second FCGI_BEGIN_REQUEST for request %u", id);
    // One request at a time (FCGI_MPXS_CONNS=0): refuse the newcomer, carry on with ours (§5.5).
    fcgi::append_end_request(out_, id, {0, fcgi::ProtocolStatus::CantMpxConn});
    return flush() ? Next::Continue : Next::Close;
  }
  if (body->role != fcgi::Role::Responder) {
    fcgi::append_end_request(out_, id, {0, fcgi::ProtocolStatus::UnknownRole});
    return (flush() && body->keep_conn()) ? Next::Continue : Next::Close;
  }
  current_ = Current{};
  current_.id = id;
  current_.keep_conn = body->keep_conn();
  return Next::Continue;
}

FastCgiServer::Next FastCgiServer::on_params(std::string_view content) {
  if (current_.has_params) return protocol_error("request %u: FCGI_PARAMS after the end of its stream", current_.id);
  if (!content.empty()) {
    if (current_.params.size() + content.size() > kMaxParamsBytes) current_.is_params_over_limit = true;
    if (!current_.is_params_over_limit) current_.params.append(content);
    return Next::Continue;
  }
  current_.has_params = true;
  if (current_.is_params_over_limit) {
    current_.early = {431, "request header fields too large"};
    return Next::Continue;
  }
  // The stream is parsed as a whole: a name-value pair may span records (§3.4 lengths say nothing of records).
  auto pairs = fcgi::parse_name_values(current_.params);
  if (!pairs) return protocol_error("request %u: FCGI_PARAMS with malformed name-value lengths", current_.id);
  current_.meta.reserve(pairs->size());
  for (const auto& [name, value] : *pairs) current_.meta.emplace_back(std::string(name), std::string(value));
  current_.params = std::string();
  BodyExpectation expected = expect_body(current_.meta, info_.limits);
  current_.early = expected.error;
  current_.body_length = expected.length;
  current_.body.reserve(expected.length);
  return Next::Continue;
}

FastCgiServer::Next FastCgiServer::on_stdin(std::string_view content) {
  if (!current_.has_params)
    return protocol_error("request %u: FCGI_STDIN before the end of FCGI_PARAMS", current_.id);
  if (current_.has_stdin) return protocol_error("request %u: FCGI_STDIN after the end of its stream", current_.id);
  if (!content.empty()) {
    // At most CONTENT_LENGTH bytes, as a CGI process reads (RFC 3875 §4.2); the rest, and the whole body of a
    // request refused early (413), is read and dropped so that the connection stays in step.
    if (current_.early.status == 0) {
      const size_t room = current_.body_length - current_.body.size();
      current_.body.append(content.substr(0, room < content.size() ? room : content.size()));
    }
    return Next::Continue;
  }
  current_.has_stdin = true;
  if (current_.early.status == 0 && current_.body.size() < current_.body_length)
    current_.early = {400, kShortBodyMessage};
  CgiReply reply = answer(info_, ctx_, std::move(current_.meta), std::move(current_.body), current_.early);
  return end_current(&reply);
}

FastCgiServer::Next FastCgiServer::end_current(const CgiReply* reply) {
  const std::uint16_t id = current_.id;
  const bool keep_conn = current_.keep_conn;
  current_ = Current{};
  if (reply != nullptr) {
    fcgi::append_stream(out_, fcgi::RecordType::Stdout, id, reply->head);
    fcgi::append_stream(out_, fcgi::RecordType::Stdout, id, reply->body());
    fcgi::append_stream_end(out_, fcgi::RecordType::Stdout, id);
  }
  fcgi::append_end_request(out_, id, {0, fcgi::ProtocolStatus::RequestComplete});
  // §5.1: without FCGI_KEEP_CONN the application closes the connection once the request is answered.
  return (flush() && keep_conn) ? Next::Continue : Next::Close;
}

bool FastCgiServer::flush() {
  size_t sent = 0;
  while (sent < out_.size()) {
    ssize_t n = sys::retry_eintr([&] { return ::send(conn_fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL); });
    if (n < 0) {
      if (errno != EPIPE && errno != ECONNRESET) log_line(name_, "send: %s", std::strerror(errno));
      out_.clear();
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  out_.clear();
  return true;
}

FastCgiServer::Next FastCgiServer::protocol_error(const char* fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  log_line(name_, "%s; closing the connection", what);
  return Next::Close;
}

}  // namespace

int run_fastcgi(const HandlerInfo& info, const char* argv0, int listen_fd) {
  FastCgiServer server(info, argv0, listen_fd);
  return server.run();
}

int run_fastcgi_at(const HandlerInfo& info, const char* argv0, std::string_view address) {
  const std::string name = handler_name(info, argv0);
  // Numeric hosts only: a name would need getaddrinfo(), which a static handler cannot use safely (it loads NSS
  // modules).
  Result<net::SockAddr> parsed = net::parse_numeric(address);
  if (!parsed) {
    log_line(name, "bad --fastcgi address \"%.*s\": expected unix:PATH or HOST:PORT with a numeric HOST",
             static_cast<int>(address.size()), address.data());
    return 2;
  }
  Result<Fd> listen_fd = net::listen_on(*parsed, {.stale = net::StaleSocket::RemoveIfUnused});
  if (!listen_fd) {
    log_line(name, "cannot listen on %.*s: %s", static_cast<int>(address.size()), address.data(),
             listen_fd.error().message().c_str());
    return 1;
  }
  Result<net::SockAddr> bound = net::local_address(listen_fd->get());
  log_line(name, "listening on %s", bound ? net::to_string(*bound).c_str() : "?");
  return run_fastcgi(info, argv0, listen_fd->get());
}

}  // namespace spawnd::sdk
