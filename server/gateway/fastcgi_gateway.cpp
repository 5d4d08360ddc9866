#include "server/gateway/fastcgi_gateway.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>

#include "common/cgi_response.h"
#include "common/error.h"
#include "common/fcgi_record.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "common/sys.h"
#include "server/gateway/admission.h"
#include "server/gateway/cgi_relay.h"
#include "server/gateway/fork_server.h"
#include "server/gateway/supervisor.h"

namespace spawnd::server {

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxReadsPerEvent = 4;
constexpr std::size_t kMaxUnsentBytes = 256 * 1024;  // stop taking request body bytes while this much is unsent
constexpr std::uint16_t kRequestId = 1;  // one request per connection at a time
constexpr int kListenBacklog = 64;

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

FastCgiAddress parse_fastcgi_address(std::string_view text) {
  Result<net::SockAddr> addr = net::resolve_endpoint(text);
  if (!addr) {
    // A malformed text says which forms there are; one that does not resolve says why (gai_strerror).
    const bool is_malformed = addr.error().category() == net::addr_category() &&
                              addr.error() != net::AddrErrc::BadUnixPath;
    throw ConfigError("FastCGI address '" + std::string(text) +
                      "': " + (is_malformed ? "expected unix:PATH or HOST:PORT" : addr.error().message()));
  }
  return FastCgiAddress{*addr, std::string(text)};
}

FastCgiPass parse_fastcgi_pass(std::string_view spec) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0 || spec.front() != '/')
    throw ConfigError("--fastcgi-pass '" + std::string(spec) + "': expected PREFIX=ADDR[@DIR], PREFIX starting with /");
  FastCgiPass pass;
  pass.prefix = std::string(spec.substr(0, eq));
  std::string_view rest = spec.substr(eq + 1);
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    pass.directory = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (pass.directory.empty() || pass.directory.front() != '/')
      throw ConfigError("--fastcgi-pass '" + std::string(spec) + "': DIR must be an absolute path");
    while (pass.directory.size() > 1 && pass.directory.back() == '/') pass.directory.pop_back();
  }
  if (rest.empty()) throw ConfigError("--fastcgi-pass '" + std::string(spec) + "': ADDR is empty");
  pass.address = std::string(rest);
  return pass;
}

// ---- One application: its connections (and, managed, its worker processes) and its queue. ---------------------

struct FastCgiSlot {
  enum class State { Closed, Connecting, Idle, Busy, Aborting };
  std::size_t index = 0;
  FastCgiAddress address;
  bool is_available = false;  // external: always; managed: its worker process is running
  ChildTable::ChildId child = 0;  // managed: the worker process in the child table (0: not running)
  pid_t pid = -1;                 // managed: its pid, for log lines
  bool is_recycling = false;  // managed: stopped on purpose (--max-requests, a replaced handler): restart at once
  HandlerVersion version;     // managed: the handler file its worker was started from
  std::uint64_t served = 0;   // requests completed by this worker (managed) or on this connection (external)
  // The connection; its watch is empty while paused with nothing to send (a hang-up would be reported
  // level-triggered again and again while we may not read).
  EventLoop::WatchedFd sock;
  std::uint32_t events = 0;  // the epoll mask sock is registered with (watch() changes it only when it differs)
  State state = State::Closed;
  bool is_reused = false;  // the connection completed a request before (it may have been closed by the peer since)
  bool is_stdin_ended = false;  // the request's empty FCGI_STDIN record is in `out` (the request went out whole)
  bool is_paused = false;  // the client's side is full: not reading FCGI_STDOUT
  fcgi::RecordReader reader;
  std::string out;
  std::size_t out_pos = 0;
  FastCgiExchange* ex = nullptr;
  StderrLines stderr_lines;
  EventLoop::TimerId restart_timer = 0;
  EventLoop::TimerId abort_timer = 0;
};

class FastCgiApp {
 public:
  // Managed: `program` is the handler's path, started as `slots` workers. External: `address` for every slot.
  FastCgiApp(FastCgiGateway& gw, std::size_t id, std::string name, std::string program, const FastCgiAddress* address,
             std::size_t slots);
  ~FastCgiApp();

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // Starts `ex` on a free connection, or queues it. Returns false (nothing started) if the queue is full.
  bool admit(FastCgiExchange& ex);
  [[nodiscard]] Admission& admission() noexcept { return admission_; }
  // Managed: if the handler's file changed since it was last seen, its workers are replaced (supervisor.h).
  void reload_if_replaced();
  // `ex` is going away (finished, cancelled or timed out): out of the queue, or its request aborted.
  void withdraw(FastCgiExchange& ex, bool kill_worker);
  // `ex` can take FCGI_STDOUT again, or has new request body bytes.
  void resume(FastCgiSlot& slot);
  void pump(FastCgiSlot& slot);

 private:
  // An idle connection, or a new one to an available address. nullptr when none is free; then `is_unreachable` says
  // whether a connection attempt failed (the application is not listening: 502 rather than waiting).
  FastCgiSlot* free_slot(bool& is_unreachable);
  // Admission's try_start: `ex` on a free connection (true), or answered 502 if the application is unreachable
  // (true), or false if it has to wait.
  bool try_start(FastCgiExchange& ex);
  void attach(FastCgiSlot& slot, FastCgiExchange& ex);
  // Opens a connection for `slot`: no error, or the errno of the failure (ECONNREFUSED/ENOENT: nobody listens
  // there; EAGAIN: a unix socket's backlog is full), logged.
  [[nodiscard]] std::error_code connect(FastCgiSlot& slot);
  void watch(FastCgiSlot& slot);
  void on_io(FastCgiSlot& slot, std::uint32_t events);
  void flush(FastCgiSlot& slot);
  void on_readable(FastCgiSlot& slot);
  // Handles the records buffered in the slot's reader; false if reading must stop (dropped or paused).
  bool process_records(FastCgiSlot& slot);
  // Handles one record; false if the connection was dropped.
  bool on_record(FastCgiSlot& slot, const fcgi::Record& record);
  void on_end_request(FastCgiSlot& slot, fcgi::ProtocolStatus status);
  void log_stderr(FastCgiSlot& slot, std::string_view bytes, bool flush_partial);
  // Closes the connection; its exchange (if any) ends with 502, or is retried on another connection when that is
  // safe. With `kill_worker` a managed worker is stopped too (it is hung or speaks garbage).
  void drop(FastCgiSlot& slot, const char* why, bool kill_worker);
  // Stops the slot's worker on purpose (supervisor.h's recycle rule): it is restarted at once when it has exited.
  void recycle(FastCgiSlot& slot);
  void start_worker(FastCgiSlot& slot);
  void on_worker_exit(FastCgiSlot& slot, int status);

  FastCgiGateway& gw_;
  std::size_t id_;  // names the workers' sockets
  std::string name_;
  std::string program_;  // managed: the executable; empty: external
  std::vector<std::unique_ptr<FastCgiSlot>> slots_;
  Admission admission_;  // requests waiting for a free connection
  RestartBackoff backoff_;  // managed: unexpected worker exits since the last completed request
  HandlerVersion version_;  // managed: the handler file as last seen; workers of another version are replaced
};

// ---- One request. ---------------------------------------------------------------------------------------------------

class FastCgiExchange final : public Exchange, public Admission::Waiter {
 public:
  FastCgiExchange(FastCgiGateway& gw, FastCgiApp& app, const Request& request, ResponseSink& sink, RequestBody& body,
                  ScriptTarget target)
      : gw_(gw),
        app_(app),
        sink_(sink),
        body_(body),
        request_id_(request.id),
        target_(std::move(target)),
        relay_(sink, gw.config_.max_header_bytes, request.is_head()),
        has_body_(request.has_body || request.content_length.value_or(0) > 0),
        is_idempotent_(request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS") {
    fcgi::append_begin_request(preamble_, kRequestId, fcgi::Role::Responder, fcgi::kKeepConn);
    std::string params;
    // Managed workers get the whole environment a CGI child would (PATH, --pass-env, SPAWND_DB, ...) before the
    // request's meta-variables; an external application keeps its own.
    for (const std::string& entry : gw.config_.base_env) {
      const auto eq = entry.find('=');
      fcgi::append_name_value(params, std::string_view(entry).substr(0, eq),
                              eq == std::string::npos ? std::string_view() : std::string_view(entry).substr(eq + 1));
    }
    const ScriptServerInfo server{.document_root = gw.config_.document_root,
                                  .pass_authorization = gw.config_.pass_authorization};
    for (const auto& [name, value] : script_meta_variables(request, target_, server))
      fcgi::append_name_value(params, name, value);
    fcgi::append_stream(preamble_, fcgi::RecordType::Params, kRequestId, params);
    fcgi::append_stream_end(preamble_, fcgi::RecordType::Params, kRequestId);
    timer_ = gw_.loop_.add_timer(gw_.config_.timeout_ms, [this] {
      timer_ = 0;
      on_timeout();
    });
  }

  ~FastCgiExchange() override {
    if (timer_) gw_.loop_.cancel(timer_);
    app_.withdraw(*this, false);
  }

  void resume() override {
    if (slot) app_.resume(*slot);
  }
  void on_request_body() override {
    if (slot) app_.pump(*slot);
  }

  // Moves the request (first the preamble, then body bytes as STDIN records) into `out`, keeping at most
  // kMaxUnsentBytes unsent. Called whenever the connection drained or body bytes arrived.
  void fill(std::string& out, std::size_t unsent) {
    if (!is_preamble_sent_) {
      out += preamble_;
      unsent += preamble_.size();
      is_preamble_sent_ = true;
      if (!has_body_) {
        fcgi::append_stream_end(out, fcgi::RecordType::Stdin, kRequestId);
        is_stdin_done_ = true;
        return;
      }
    }
    while (!is_stdin_done_ && unsent < kMaxUnsentBytes) {
      std::string_view avail = body_.available();
      if (avail.empty()) break;
      avail = avail.substr(0, std::min(avail.size(), kMaxUnsentBytes - unsent));
      fcgi::append_stream(out, fcgi::RecordType::Stdin, kRequestId, avail);
      unsent += avail.size();
      body_.consume(avail.size());
    }
    if (!is_stdin_done_ && body_.is_complete() && body_.available().empty()) {
      fcgi::append_stream_end(out, fcgi::RecordType::Stdin, kRequestId);
      is_stdin_done_ = true;
    }
  }

  // FCGI_STDOUT content. Returns false once the response has ended (or the client is gone): the rest of the
  // output is not wanted.
  bool on_stdout(std::string_view bytes) {
    if (is_finished_) return false;
    has_output_ = true;
    switch (relay_.feed(bytes)) {
      case CgiOutputRelay::Step::More: return true;
      case CgiOutputRelay::Step::Paused:
        if (slot) slot->is_paused = true;
        return true;
      case CgiOutputRelay::Step::Complete:
        if (!relay_.is_redirected()) return true;  // the response ends with FCGI_END_REQUEST
        is_finished_ = true;  // the connection serves the redirect's target
        return false;
      case CgiOutputRelay::Step::BadGateway:
        SPAWND_LOG_ERROR("fastcgi[%llu] %s: %s", ull(request_id_), app_.name().c_str(), relay_.error().c_str());
        finish(GatewayError::BadGateway);
        return false;
      case CgiOutputRelay::Step::SinkClosed: return false;  // the connection is closing; it destroys us later
    }
    return false;
  }

  // FCGI_END_REQUEST: the application is done with the request. A protocol status other than FCGI_REQUEST_COMPLETE
  // means it refused the request (spec §5.5): FCGI_OVERLOADED → 503, anything else → 502.
  void on_end_request(fcgi::ProtocolStatus status) {
    if (is_finished_) return;
    if (status != fcgi::ProtocolStatus::RequestComplete && !relay_.has_head()) {
      SPAWND_LOG_ERROR("fastcgi[%llu] %s: the application refused the request (protocol status %u)",
                       ull(request_id_), app_.name().c_str(), static_cast<unsigned>(status));
      finish(status == fcgi::ProtocolStatus::Overloaded ? GatewayError::ServiceUnavailable : GatewayError::BadGateway);
      return;
    }
    if (relay_.end() == CgiOutputRelay::Step::BadGateway) {
      SPAWND_LOG_ERROR("fastcgi[%llu] %s: %s", ull(request_id_), app_.name().c_str(), relay_.error().c_str());
      finish(GatewayError::BadGateway);
      return;
    }
    finish(std::nullopt);
  }

  // The connection failed under this request. Returns true if the caller should run it again on another
  // connection: nothing came back, nothing of a body was consumed, the method is idempotent and this connection had
  // been reused (a kept-open connection the application closed while idle, e.g. php-fpm's pm.max_requests).
  bool on_connection_lost(bool was_reused) {
    if (is_finished_) return false;
    if (was_reused && !has_output_ && !has_body_ && is_idempotent_ && !is_retried_) {
      is_retried_ = true;
      is_preamble_sent_ = false;
      is_stdin_done_ = false;
      return true;
    }
    finish(GatewayError::BadGateway);
    return false;
  }

  void fail_unavailable() { finish(GatewayError::ServiceUnavailable); }
  void fail_unreachable() { finish(GatewayError::BadGateway); }

  [[nodiscard]] std::uint64_t request_id() const noexcept { return request_id_; }
  [[nodiscard]] bool is_finished() const noexcept { return is_finished_; }
  [[nodiscard]] bool is_stdin_done() const noexcept { return is_stdin_done_; }

  FastCgiSlot* slot = nullptr;  // the connection serving this request, while it does

 private:
  void on_timeout() {
    if (app_.admission().expire(*this, gw_.config_.timeout_ms)) {
      finish(GatewayError::ServiceUnavailable);
      return;
    }
    // Waiting on the client (its body still arriving, or it reads our response slowly) is not the application's
    // fault: abort the request, keep the worker. Otherwise the worker is hung: stop and replace it.
    const bool is_waiting_on_client = slot != nullptr && (slot->is_paused || !is_stdin_done_);
    SPAWND_LOG_ERROR("fastcgi[%llu] %s: no complete response within %lld ms%s", ull(request_id_), app_.name().c_str(),
                     static_cast<long long>(gw_.config_.timeout_ms),
                     is_waiting_on_client ? " (the client is slow)" : "");
    finish(GatewayError::GatewayTimeout, !is_waiting_on_client);
  }

  void finish(std::optional<GatewayError> error, bool kill_worker = false) {
    if (is_finished_) return;
    is_finished_ = true;
    if (timer_) {
      gw_.loop_.cancel(timer_);
      timer_ = 0;
    }
    if (error) app_.withdraw(*this, kill_worker);
    sink_.on_end(error);
  }

  FastCgiGateway& gw_;
  FastCgiApp& app_;
  ResponseSink& sink_;
  RequestBody& body_;
  std::uint64_t request_id_;
  ScriptTarget target_;
  CgiOutputRelay relay_;
  std::string preamble_;  // FCGI_BEGIN_REQUEST and the FCGI_PARAMS stream
  bool has_body_;
  bool is_idempotent_;
  EventLoop::TimerId timer_ = 0;
  bool is_preamble_sent_ = false;
  bool is_stdin_done_ = false;
  bool has_output_ = false;
  bool is_finished_ = false;
  bool is_retried_ = false;
};

// ---- FastCgiApp ------------------------------------------------------------------------------------------------------

FastCgiApp::FastCgiApp(FastCgiGateway& gw, std::size_t id, std::string name, std::string program,
                       const FastCgiAddress* address, std::size_t slots)
    : gw_(gw),
      id_(id),
      name_(std::move(name)),
      program_(std::move(program)),
      admission_("fastcgi", "connection", gw.config_.max_queue,
                 [this](Admission::Waiter& waiter) { return try_start(static_cast<FastCgiExchange&>(waiter)); }) {
  if (!program_.empty()) version_ = HandlerVersion::of(program_).value_or(HandlerVersion{});
  for (std::size_t i = 0; i < slots; ++i) {
    auto slot = std::make_unique<FastCgiSlot>();
    slot->index = i;
    if (address) {
      slot->address = *address;
      slot->is_available = true;
    }
    slots_.push_back(std::move(slot));
  }
  if (!program_.empty())
    for (auto& slot : slots_) start_worker(*slot);
}

FastCgiApp::~FastCgiApp() {
  for (auto& slot : slots_) {
    if (slot->restart_timer) gw_.loop_.cancel(slot->restart_timer);
    if (slot->abort_timer) gw_.loop_.cancel(slot->abort_timer);
    // The worker stays in the child table, which stops and reaps it; nobody listens for its exit any more.
    if (slot->child) {
      gw_.children_->set_exit_callback(slot->child, nullptr);
      gw_.children_->terminate_group(slot->child);
    }
  }
}

bool FastCgiApp::admit(FastCgiExchange& ex) {
  return admission_.admit(ex, ex.request_id(), name_) != Admission::Outcome::Refused;
}

bool FastCgiApp::try_start(FastCgiExchange& ex) {
  bool is_unreachable = false;
  if (FastCgiSlot* slot = free_slot(is_unreachable)) {
    attach(*slot, ex);
    return true;
  }
  if (is_unreachable) {
    ex.fail_unreachable();
    return true;
  }
  return false;
}

FastCgiSlot* FastCgiApp::free_slot(bool& is_unreachable) {
  for (auto& slot : slots_)
    if (slot->state == FastCgiSlot::State::Idle) return slot.get();
  bool has_failed = false;
  for (auto& slot : slots_) {
    if (slot->state != FastCgiSlot::State::Closed || !slot->is_available || slot->restart_timer) continue;
    const std::error_code err = connect(*slot);
    if (!err) return slot.get();
    has_failed = true;
    // A managed worker's socket listens from before the worker starts: a refused connection means it has died.
    // Nothing connects to it again until its exit is seen and it is restarted. (Other errors, EMFILE or a full
    // backlog, say nothing about the worker: it is tried again next time.)
    if (!program_.empty() && (err.value() == ECONNREFUSED || err.value() == ENOENT)) slot->is_available = false;
  }
  // Waiting helps if some connection is still serving (it frees up), or, managed, while workers restart. An external
  // application that refuses us with nothing in flight is down: 502 rather than a wait for the timeout.
  const bool is_any_busy = std::any_of(slots_.begin(), slots_.end(), [](const auto& slot) {
    return slot->state != FastCgiSlot::State::Closed;
  });
  is_unreachable = has_failed && program_.empty() && !is_any_busy;
  return nullptr;
}

std::error_code FastCgiApp::connect(FastCgiSlot& slot) {
  Result<net::Connecting> connecting = net::connect_nonblocking(slot.address.addr);
  if (!connecting) {
    SPAWND_LOG_ERROR("fastcgi %s: connect to %s: %s", name_.c_str(), slot.address.text.c_str(),
                     connecting.error().message().c_str());
    return connecting.error();
  }
  slot.sock.fd = std::move(connecting->fd);
  slot.state = connecting->is_connected ? FastCgiSlot::State::Idle : FastCgiSlot::State::Connecting;
  slot.is_reused = false;
  slot.is_paused = false;
  slot.reader = fcgi::RecordReader();
  slot.out.clear();
  slot.out_pos = 0;
  slot.events = EPOLLIN | EPOLLOUT;
  slot.sock.watch = gw_.loop_.watch(slot.sock.get(), slot.events, [this, s = &slot](std::uint32_t ev) { on_io(*s, ev); });
  if (!slot.sock.watch) {
    const std::error_code err = errno_code();
    SPAWND_LOG_ERROR("fastcgi %s: epoll_ctl: %s", name_.c_str(), err.message().c_str());
    slot.sock.close();
    slot.state = FastCgiSlot::State::Closed;
    return err;
  }
  return {};
}

void FastCgiApp::attach(FastCgiSlot& slot, FastCgiExchange& ex) {
  ex.slot = &slot;
  slot.ex = &ex;
  slot.is_stdin_ended = false;
  if (slot.state == FastCgiSlot::State::Idle) slot.state = FastCgiSlot::State::Busy;
  // A Connecting slot turns Busy when the connection is up (on_io).
  pump(slot);
}

void FastCgiApp::pump(FastCgiSlot& slot) {
  if (slot.state != FastCgiSlot::State::Busy || !slot.ex) return;
  slot.ex->fill(slot.out, slot.out.size() - slot.out_pos);
  slot.is_stdin_ended = slot.ex->is_stdin_done();
  flush(slot);
}

void FastCgiApp::resume(FastCgiSlot& slot) {
  if (!slot.is_paused) return;
  slot.is_paused = false;
  watch(slot);
  on_readable(slot);
}

void FastCgiApp::watch(FastCgiSlot& slot) {
  if (!slot.sock) return;
  std::uint32_t events = slot.is_paused ? 0U : static_cast<std::uint32_t>(EPOLLIN);
  if (slot.state == FastCgiSlot::State::Connecting || slot.out_pos < slot.out.size()) events |= EPOLLOUT;
  if (events == 0) {
    // Paused with nothing to send: out of the loop altogether, or a hang-up of the application would be reported
    // again and again (epoll always reports EPOLLHUP/EPOLLERR) while we may not read.
    slot.sock.watch.reset();
    return;
  }
  if (!slot.sock.watch) {
    slot.events = events;
    slot.sock.watch = gw_.loop_.watch(slot.sock.get(), events, [this, s = &slot](std::uint32_t ev) { on_io(*s, ev); });
    if (!slot.sock.watch) drop(slot, "epoll_ctl failed", false);
    return;
  }
  if (events == slot.events) return;  // one epoll_ctl fewer per request in the common case
  slot.events = events;
  if (!slot.sock.watch.modify(events)) drop(slot, "epoll_ctl failed", false);
}

void FastCgiApp::on_io(FastCgiSlot& slot, std::uint32_t events) {
  if (slot.state == FastCgiSlot::State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(slot.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      SPAWND_LOG_ERROR("fastcgi %s: connect to %s: %s", name_.c_str(), slot.address.text.c_str(), std::strerror(err));
      drop(slot, nullptr, false);
      return;
    }
    slot.state = slot.ex ? FastCgiSlot::State::Busy : FastCgiSlot::State::Idle;
    pump(slot);
    if (!slot.sock) return;
  }
  if ((events & EPOLLOUT) != 0) {
    flush(slot);
    if (!slot.sock) return;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) on_readable(slot);
}

void FastCgiApp::flush(FastCgiSlot& slot) {
  while (slot.out_pos < slot.out.size()) {
    const ssize_t n = sys::retry_eintr([&] {
      return ::send(slot.sock.get(), slot.out.data() + slot.out_pos, slot.out.size() - slot.out_pos, MSG_NOSIGNAL);
    });
    if (n > 0) {
      slot.out_pos += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) break;
    drop(slot, n < 0 ? std::strerror(errno) : "send failed", false);
    return;
  }
  if (slot.out_pos == slot.out.size()) {
    slot.out.clear();
    slot.out_pos = 0;
    // Room again: more of the request body can go.
    if (slot.ex && slot.state == FastCgiSlot::State::Busy) {
      slot.ex->fill(slot.out, 0);
      slot.is_stdin_ended = slot.ex->is_stdin_done();
      if (!slot.out.empty()) {
        flush(slot);
        return;
      }
    }
  }
  watch(slot);
}

void FastCgiApp::on_readable(FastCgiSlot& slot) {
  char buf[kReadChunkBytes];
  // Records left in the reader when the client's side filled up go first.
  if (!process_records(slot)) return;
  for (int i = 0; i < kMaxReadsPerEvent && slot.sock && !slot.is_paused; ++i) {
    ssize_t n = sys::read(slot.sock.get(), buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      const bool was_idle = slot.state == FastCgiSlot::State::Idle;
      drop(slot, was_idle ? nullptr : (n == 0 ? "connection closed before FCGI_END_REQUEST" : std::strerror(errno)),
           false);
      return;
    }
    slot.reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!process_records(slot)) return;
  }
}

bool FastCgiApp::process_records(FastCgiSlot& slot) {
  fcgi::Record record;
  if (slot.is_paused) watch(slot);  // stop reading until resume()
  while (slot.sock && !slot.is_paused) {
    switch (slot.reader.next(record)) {
      case fcgi::RecordReader::Status::NeedMore: return true;
      case fcgi::RecordReader::Status::Malformed:
        drop(slot, "malformed record (version is not 1)", true);
        return false;
      case fcgi::RecordReader::Status::Record:
        if (!on_record(slot, record)) return false;
        break;
    }
  }
  if (slot.sock && slot.is_paused) watch(slot);
  return false;
}

bool FastCgiApp::on_record(FastCgiSlot& slot, const fcgi::Record& record) {
  using fcgi::RecordType;
  if (record.request_id == fcgi::kNullRequestId) return true;  // FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE: unused
  if (record.request_id != kRequestId || slot.state == FastCgiSlot::State::Idle) {
    drop(slot, "record for a request that is not in progress", true);
    return false;
  }
  const bool is_aborting = slot.state == FastCgiSlot::State::Aborting || slot.ex == nullptr;
  if (record.is(RecordType::Stdout)) {
    if (!is_aborting && !record.content.empty()) {
      FastCgiExchange* ex = slot.ex;
      if (!ex->on_stdout(record.content) && slot.ex == ex) {
        // Answered already (a local redirect) or the client is gone: the rest of the output is not wanted.
        withdraw(*ex, false);
      }
    }
    return slot.sock.get() >= 0;
  }
  if (record.is(RecordType::Stderr)) {
    log_stderr(slot, record.content, record.content.empty());
    return true;
  }
  if (record.is(RecordType::EndRequest)) {
    const std::optional<fcgi::EndRequestBody> end = fcgi::parse_end_request(record.content);
    if (!end) {
      drop(slot, "malformed FCGI_END_REQUEST", true);
      return false;
    }
    on_end_request(slot, end->protocol_status);
    return slot.sock.get() >= 0;
  }
  drop(slot, "unexpected record type from the application", true);
  return false;
}

void FastCgiApp::on_end_request(FastCgiSlot& slot, fcgi::ProtocolStatus status) {
  log_stderr(slot, {}, true);
  FastCgiExchange* ex = slot.ex;
  // An application may end a request before reading all of it (a body over its limit). The rest of the request,
  // still in `out` or not yet sent, would reach it where it expects the next FCGI_BEGIN_REQUEST: not reusable.
  const bool is_clean = slot.is_stdin_ended && slot.out_pos == slot.out.size();
  slot.ex = nullptr;
  slot.state = FastCgiSlot::State::Idle;
  slot.is_reused = true;
  slot.is_paused = false;
  if (slot.abort_timer) {
    gw_.loop_.cancel(slot.abort_timer);
    slot.abort_timer = 0;
  }
  ++slot.served;
  backoff_.reset();
  if (ex) {
    ex->slot = nullptr;
    ex->on_end_request(status);
  }
  if (!is_clean && slot.sock) {
    drop(slot, nullptr, false);
    return;
  }
  if (!program_.empty() && slot.child) {
    if (gw_.config_.max_requests > 0 && slot.served >= gw_.config_.max_requests) {
      SPAWND_LOG_INFO("fastcgi %s: worker %d served %llu requests: replacing it", name_.c_str(),
                      static_cast<int>(slot.pid), ull(slot.served));
      recycle(slot);
      return;
    }
    if (!(slot.version == version_)) {
      recycle(slot);  // the handler was replaced while this worker served its last request
      return;
    }
  }
  watch(slot);
  admission_.slot_freed();
}

void FastCgiApp::log_stderr(FastCgiSlot& slot, std::string_view bytes, bool flush_partial) {
  auto emit = [&](std::string_view line) {
    SPAWND_LOG_WARN("fastcgi[%llu] %s: %.*s", ull(slot.ex ? slot.ex->request_id() : 0), name_.c_str(),
                    static_cast<int>(line.size()), line.data());
  };
  slot.stderr_lines.append(bytes, emit);
  if (flush_partial) slot.stderr_lines.flush(emit);
}

void FastCgiApp::drop(FastCgiSlot& slot, const char* why, bool kill_worker) {
  if (why) SPAWND_LOG_ERROR("fastcgi %s: %s: %s", name_.c_str(), slot.address.text.c_str(), why);
  slot.sock.close();
  if (slot.abort_timer) {
    gw_.loop_.cancel(slot.abort_timer);
    slot.abort_timer = 0;
  }
  // Retrying is for an external application that closed a kept-open connection while idle. A managed worker
  // never closes its connection: if it is gone, the worker died, maybe of this very request.
  const bool was_reused = slot.is_reused && program_.empty();
  slot.state = FastCgiSlot::State::Closed;
  slot.out.clear();
  slot.out_pos = 0;
  slot.stderr_lines = StderrLines();
  slot.is_paused = false;
  if (kill_worker && slot.child) {
    slot.is_available = false;  // its exit restarts it; until then nothing connects to it
    gw_.children_->terminate_group(slot.child);
  }
  if (FastCgiExchange* ex = slot.ex) {
    slot.ex = nullptr;
    ex->slot = nullptr;
    if (ex->on_connection_lost(was_reused)) admission_.requeue_first(*ex);
  }
  admission_.slot_freed();
}

void FastCgiApp::withdraw(FastCgiExchange& ex, bool kill_worker) {
  if (admission_.withdraw(ex)) return;
  FastCgiSlot* slot = ex.slot;
  if (!slot) return;
  ex.slot = nullptr;
  slot->ex = nullptr;
  if (kill_worker || slot->state != FastCgiSlot::State::Busy) {
    // Timed out (the application is hung), or the connection was not even up: it cannot be trusted any more.
    if (kill_worker && !program_.empty() && slot->child)
      SPAWND_LOG_ERROR("fastcgi %s: stopping worker %d", name_.c_str(), static_cast<int>(slot->pid));
    drop(*slot, nullptr, kill_worker);
    return;
  }
  // The client went away, or we answered already (a local redirect): FCGI_ABORT_REQUEST (spec §5.4); the
  // connection is free again at FCGI_END_REQUEST. Not at once: the application may have ended the request already,
  // its FCGI_END_REQUEST among the records being handled now (a local redirect and the end in one write) or left in
  // the reader while the client's side was full. An abort for a request that has ended arrives where the application
  // expects the next FCGI_BEGIN_REQUEST, and a strict one (php-fpm) drops the connection, failing the next request
  // on it. So the records at hand go first, and the abort only if the request is still running after them.
  slot->state = FastCgiSlot::State::Aborting;
  slot->is_paused = false;
  watch(*slot);
  slot->abort_timer = gw_.loop_.add_timer(0, [this, slot] {
    slot->abort_timer = 0;
    on_readable(*slot);  // may end the request (Idle, maybe Busy again) or drop the connection (Closed)
    if (!slot->sock || slot->state != FastCgiSlot::State::Aborting) return;
    fcgi::append_abort_request(slot->out, kRequestId);
    slot->abort_timer = gw_.loop_.add_timer(gw_.config_.timeout_ms, [this, slot] {
      slot->abort_timer = 0;
      drop(*slot, "no FCGI_END_REQUEST after FCGI_ABORT_REQUEST", true);
    });
    flush(*slot);
  });
}

void FastCgiApp::reload_if_replaced() {
  if (program_.empty()) return;
  const std::optional<HandlerVersion> now = HandlerVersion::of(program_);
  if (!now || *now == version_) return;  // a handler removed keeps its workers until it is back
  version_ = *now;
  SPAWND_LOG_INFO("fastcgi %s: the handler was replaced: replacing its workers", name_.c_str());
  // Idle workers now; a busy one when its request ends (on_end_request).
  for (auto& slot : slots_) {
    if (slot->child && !(slot->version == version_) &&
        (slot->state == FastCgiSlot::State::Idle || slot->state == FastCgiSlot::State::Closed))
      recycle(*slot);
  }
}

void FastCgiApp::recycle(FastCgiSlot& slot) {
  slot.is_recycling = true;
  slot.is_available = false;
  drop(slot, nullptr, false);
  gw_.children_->terminate_group(slot.child);
}

void FastCgiApp::start_worker(FastCgiSlot& slot) {
  slot.restart_timer = 0;
  slot.is_recycling = false;
  // "<app>.<worker>": short whatever the handler's name (a unix socket path has at most 107 bytes).
  const std::string path = gw_.socket_dir_ + "/" + std::to_string(id_) + "." + std::to_string(slot.index);
  slot.version = HandlerVersion::of(program_).value_or(HandlerVersion{});
  const auto spawn_worker = [this](int listen_fd) {
    SpawnSpec spec;
    spec.path = program_;
    spec.argv.push_back(program_);
    spec.envp = gw_.config_.base_env;
    spec.cwd = gw_.config_.directory;
    spec.stdin_fd = listen_fd;  // FCGI_LISTENSOCK_FILENO
    spec.stdout_fd = gw_.dev_null_.get();
    spec.stderr_fd = STDERR_FILENO;  // the SDK writes whole lines ("handler NAME: ...") with one write each
    return spawn_process(spec);
  };
  Result<net::SockAddr> address = net::unix_address(path);
  Result<Fd> listener = address ? net::listen_on(*address, {.backlog = kListenBacklog, .stale = net::StaleSocket::Remove})
                                : Result<Fd>(address.error());
  Result<ChildProcess> worker = listener ? spawn_worker(listener->get()) : Result<ChildProcess>(listener.error());
  if (!worker) {
    const std::int64_t delay = backoff_.next_delay_ms();
    SPAWND_LOG_ERROR("fastcgi %s: cannot start worker %zu: %s; retrying in %lld ms", name_.c_str(), slot.index,
                     worker.error().message().c_str(), static_cast<long long>(delay));
    slot.restart_timer = gw_.loop_.add_timer(delay, [this, s = &slot] { start_worker(*s); });
    return;
  }
  slot.served = 0;
  const pid_t child = worker->pid;
  auto id = gw_.children_->watch(std::move(*worker), [this, s = &slot](int status) { on_worker_exit(*s, status); });
  if (!id) {  // logged by the table, which killed it
    slot.restart_timer = gw_.loop_.add_timer(RestartBackoff::kFirstDelayMs, [this, s = &slot] { start_worker(*s); });
    return;
  }
  slot.child = *id;
  slot.pid = child;
  slot.address.addr = *address;
  slot.address.text = "worker " + std::to_string(child);
  slot.is_available = true;
  SPAWND_LOG_DEBUG("fastcgi %s: worker %d started on %s", name_.c_str(), static_cast<int>(child), path.c_str());
  admission_.slot_freed();
}

void FastCgiApp::on_worker_exit(FastCgiSlot& slot, int status) {
  const pid_t pid = slot.pid;
  slot.child = 0;
  slot.pid = -1;
  slot.is_available = false;
  std::int64_t delay = 0;
  if (!slot.is_recycling) {
    delay = backoff_.next_delay_ms();
    SPAWND_LOG_ERROR("fastcgi %s: worker %d ended with %s; restarting it in %lld ms", name_.c_str(),
                     static_cast<int>(pid), describe_exit(status).c_str(), static_cast<long long>(delay));
  }
  // Its connection ends with it: a request on it gets 502 (drop() decides; the socket may have reported EOF first).
  if (slot.sock) drop(slot, nullptr, false);
  slot.restart_timer = gw_.loop_.add_timer(delay, [this, s = &slot] { start_worker(*s); });
}

// ---- FastCgiGateway --------------------------------------------------------------------------------------------------

FastCgiGateway::FastCgiGateway(EventLoop& loop, ChildTable& children, FastCgiConfig config,
                               std::unique_ptr<Gateway> fallback)
    : loop_(loop),
      config_(std::move(config)),
      is_managed_(true),
      fallback_(std::move(fallback)),
      children_(&children),
      dev_null_(::open("/dev/null", O_RDWR | O_CLOEXEC)) {
  if (!dev_null_) throw Error(errno, "open /dev/null");
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/spawnd-fastcgi-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw Error(errno, "mkdtemp " + dir);
  socket_dir_ = dir;
  // Every SDK handler there now gets its workers at once; later arrivals on their first request.
  if (DIR* d = ::opendir(config_.directory.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      (void)managed_app(e->d_name);
    }
    ::closedir(d);
  }
}

FastCgiGateway::FastCgiGateway(EventLoop& loop, FastCgiConfig config, FastCgiAddress address)
    : loop_(loop), config_(std::move(config)), is_managed_(false) {
  apps_.emplace("", std::make_unique<FastCgiApp>(*this, 0, address.text, std::string(), &address,
                                                 std::max<std::size_t>(1, config_.max_connections)));
}

FastCgiGateway::~FastCgiGateway() {
  apps_.clear();  // stops the workers (SIGTERM; the server's child table kills and reaps what is left at exit)
  if (!socket_dir_.empty()) {
    if (DIR* d = ::opendir(socket_dir_.c_str())) {
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ::unlink((socket_dir_ + "/" + e->d_name).c_str());
      ::closedir(d);
    }
    ::rmdir(socket_dir_.c_str());
  }
}

FastCgiApp* FastCgiGateway::managed_app(const std::string& name) {
  if (auto it = apps_.find(name); it != apps_.end()) return it->second.get();
  auto known = is_sdk_.find(name);
  if (known == is_sdk_.end()) {
    const std::string path = config_.directory + "/" + name;
    struct stat st{};
    const bool is_program = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
    known = is_sdk_.emplace(name, is_program && is_sdk_handler(path)).first;
  }
  if (!known->second) return nullptr;
  SPAWND_LOG_INFO("fastcgi: %s: %zu workers", name.c_str(), config_.workers);
  auto app = std::make_unique<FastCgiApp>(*this, apps_.size(), name, config_.directory + "/" + name, nullptr,
                                          std::max<std::size_t>(1, config_.workers));
  return apps_.emplace(name, std::move(app)).first->second.get();
}

std::unique_ptr<Exchange> FastCgiGateway::start(const Request& request, ResponseSink& sink, RequestBody& body) {
  // A handler whose workers run is not checked as a script (its workers serve it); reload_if_replaced() stats it to
  // see whether it was replaced. Any other name is checked as in CGI mode (404, 403) before it is started or handed
  // to CGI.
  Result<ScriptTarget> mapped = map_script(request.path, config_.prefix, config_.directory, ScriptCheck::None);
  if (mapped && is_managed_ && !apps_.contains(mapped->name))
    mapped = map_script(request.path, config_.prefix, config_.directory, ScriptCheck::Executable);
  if (!mapped) {
    answer_script_error(sink, mapped.error());
    return nullptr;
  }
  ScriptTarget& target = *mapped;
  FastCgiApp* app = is_managed_ ? managed_app(target.name) : apps_.begin()->second.get();
  if (app && is_managed_) app->reload_if_replaced();
  if (!app) {
    if (fallback_) return fallback_->start(request, sink, body);
    answer_status(sink, 404);
    return nullptr;
  }
  auto ex = std::make_unique<FastCgiExchange>(*this, *app, request, sink, body, std::move(target));
  if (!app->admit(*ex)) {
    ex->fail_unavailable();
    return nullptr;
  }
  if (ex->is_finished()) return nullptr;  // answered already: 502, the application is not listening
  return ex;
}

}  // namespace spawnd::server
