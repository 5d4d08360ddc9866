#include "server/connection.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/net_addr.h"
#include "common/sys.h"
#include "server/server.h"
#include "server/static_files.h"
#include "server/tls.h"

namespace spawnd::server {

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxReadsPerEvent = 4;  // then let other connections run (redis NET_MAX_WRITES_PER_EVENT, for reads)
constexpr std::size_t kTlsMaxRecordBytes = 16 * 1024;  // a TLS record's plaintext at most (RFC 8446 §5.1)
// Decoded body bytes buffered for an exchange before we stop reading from the client (backpressure).
constexpr std::size_t kBodyHighWaterBytes = 256 * 1024;
// Unparsed pipelined bytes we accept while a response is still being produced.
constexpr std::size_t kMaxPipelinedBytes = 64 * 1024;
// After an error response that leaves request bytes unread, how long we keep reading (and discarding) before the
// close, so that the client sees the response rather than a TCP reset (nginx's lingering_close).
constexpr std::int64_t kLingerMs = 2000;

}  // namespace

Connection::Connection(Server& server, Fd socket, std::uint64_t id, const sockaddr_storage& peer,
                       std::shared_ptr<const TlsContexts> tls)
    : server_(server),
      loop_(server.loop()),
      socket_{std::move(socket), {}},
      id_(id),
      parser_(server.config().max_header_bytes, server.config().max_body_bytes),
      body_(server.body_budget(), server.config().body_buffer_bytes, server.config().body_temp_dir),
      tls_contexts_(std::move(tls)) {
  remote_addr_ = net::format_host(peer, remote_port_);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&local), &len) == 0)
    local_addr_ = net::format_host(local, local_port_);
}

Connection::~Connection() {
  // First: a queued or cancelled exchange still references req_.request, body_ and this sink (gateway.h).
  retired_exchanges_.clear();
  exchange_.reset();
  if (timer_) loop_.cancel(timer_);
}

// ---- the state machine ----

bool Connection::is_transition_allowed(State from, State to) noexcept {
  switch (to) {
    case State::Accepted: return false;
    case State::Idle: return from == State::Accepted || from == State::Finished;
    case State::ReadingHead: return from == State::Idle;
    case State::BufferingBody: return from == State::Idle || from == State::ReadingHead;
    case State::Responding:
      return from == State::Idle || from == State::ReadingHead || from == State::BufferingBody;
    case State::Sending:
      return from == State::Idle || from == State::ReadingHead || from == State::BufferingBody ||
             from == State::Responding;
    case State::Finished:
    case State::Lingering: return from == State::Sending;
    case State::Closed: return from != State::Closed;
  }
  return false;
}

void Connection::advance(State next) {
  assert(is_transition_allowed(state_, next));
  const State from = state_;
  state_ = next;
  const Config& cfg = server_.config();
  switch (next) {
    case State::Accepted: break;
    case State::Idle:
      // A new connection gets the header timeout (nothing received yet: it covers the first head); a kept-alive one
      // the keep-alive timeout.
      arm_timer(from == State::Accepted ? cfg.header_timeout_ms : cfg.keepalive_timeout_ms);
      break;
    case State::ReadingHead: arm_timer(cfg.header_timeout_ms); break;  // from the first byte of the head
    case State::BufferingBody:
    case State::Responding:
    case State::Sending:
    case State::Finished: break;  // the I/O timeout armed when the head completed (on_request_head) keeps running
    case State::Lingering:
      if (tls_) tls_->shutdown();
      ::shutdown(socket_.get(), SHUT_WR);
      in_.clear();
      in_pos_ = 0;
      arm_timer(kLingerMs);
      break;
    case State::Closed:
      if (timer_) {
        loop_.cancel(timer_);
        timer_ = 0;
      }
      if (tls_) tls_->shutdown();
      socket_.close();
      out_.reset();
      retire_exchange();  // cancels it: a CGI child is signalled
      server_.release(*this);
      break;
  }
}

void Connection::defer(void (Connection::*step)()) {
  loop_.defer([this, step, alive = std::weak_ptr<const bool>(alive_)] {
    if (!alive.expired()) (this->*step)();
  });
}

bool Connection::start() {
  if (tls_contexts_) {
    try {
      tls_ = std::make_unique<TlsStream>(std::move(tls_contexts_), socket_.get());
    } catch (const std::exception& e) {
      SPAWND_LOG_ERROR("connection %llu: %s", static_cast<unsigned long long>(id_), e.what());
      return false;
    }
  }
  interest_ = EPOLLIN;
  socket_.watch = loop_.watch(socket_.get(), interest_, [this](std::uint32_t events) { on_io(events); });
  if (!socket_.watch) return false;
  last_activity_ms_ = loop_.now_ms();
  advance(State::Idle);
  return true;
}

bool Connection::is_idle() const noexcept {
  return state_ == State::Idle && !parser_.has_partial_head() && in_pos_ == in_.size();
}

void Connection::close() {
  if (state_ == State::Closed) return;
  if (state_ == State::Responding && req_.response.is_head_written()) {
    SPAWND_LOG_DEBUG("request %llu: connection closed before the response was complete",
                     static_cast<unsigned long long>(req_.request->id));
  }
  advance(State::Closed);
}

void Connection::on_shutdown() {
  is_shutting_down_ = true;
  req_.is_keep_alive = false;
  if (is_idle()) close();
}

// ---- I/O events ----

void Connection::on_io(std::uint32_t events) {
  if (events & EPOLLERR) {
    close();
    return;
  }
  if (events & EPOLLOUT) {
    on_writable();
    if (state_ == State::Closed) return;
  }
  if (events & EPOLLIN) {
    if (is_write_waiting_readable_) {
      is_write_waiting_readable_ = false;
      on_writable();
      if (state_ == State::Closed) return;
    }
    on_readable();
  } else if (events & EPOLLHUP) {
    close();  // both directions gone
  }
}

void Connection::on_readable() {
  // Reads land here first and only the bytes read are appended to in_: growing in_ by a whole chunk before each
  // read zero-filled 64 KiB per read (3 % of the front end's CPU under wrk, perf). One buffer per loop thread.
  thread_local std::array<char, kReadChunkBytes> scratch;
  if (state_ == State::Lingering) {
    for (;;) {
      ssize_t n = receive(scratch.data(), scratch.size());
      if (n > 0) continue;
      if (n < 0 && errno == EAGAIN) return;
      close();
      return;
    }
  }
  for (int i = 0; i < kMaxReadsPerEvent && !is_read_paused_; ++i) {
    // Enough pipelined bytes wait behind the request being answered: read no more now (update_interest() pauses
    // reading), so that a client that pipelines without reading its responses costs at most this much memory.
    if (parser_.is_message_done() && in_.size() - in_pos_ > kMaxPipelinedBytes) break;
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    }
    ssize_t n = receive(scratch.data(), scratch.size());
    if (n > 0) {
      in_.append(scratch.data(), static_cast<std::size_t>(n));
      last_activity_ms_ = loop_.now_ms();
      process_input();
      if (state_ == State::Closed) return;
      // A short read means the socket is empty for now (level-triggered epoll tells if more comes). A TLS read returns
      // one record: only a record shorter than the largest (RFC 8446 §5.1: 2^14 bytes) says so.
      if (static_cast<std::size_t>(n) < (tls_ ? kTlsMaxRecordBytes : kReadChunkBytes) && !(tls_ && tls_->has_pending()))
        break;
      continue;
    }
    if (n < 0 && errno == EAGAIN) break;
    if (n == 0 && !exchange_ && req_.request && parser_.is_message_done() &&
        !out_.is_empty()) {
      // EOF after a whole request while a static response is still being sent: the client shut down its sending
      // side only (`nc -N`, some HTTP/1.0 tools). Finishing costs nothing, and a client that is really gone shows
      // up as EPIPE on send; so send the rest, then close, as nginx does for static files.
      is_read_eof_ = true;
      req_.is_keep_alive = false;
      break;
    }
    if (n < 0 && tls_ && tls_->is_plain_http_request()) {
      answer_plain_http_on_tls_port();
      if (state_ == State::Closed) return;
      break;
    }
    // EOF or a read error. A client that goes away while its request is being answered is treated as gone for
    // good (as nginx and Go's net/http do): the exchange is cancelled, which kills a CGI child.
    close();
    return;
  }
  update_interest();
}

void Connection::answer_plain_http_on_tls_port() {
  SPAWND_LOG_DEBUG("connection %llu from %s: a plain HTTP request on the TLS port: 400",
                   static_cast<unsigned long long>(id_), remote_addr_.c_str());
  tls_.reset();  // plain HTTP from here on: the answer, then the lingering close
  is_read_waiting_writable_ = false;
  is_write_waiting_readable_ = false;
  send_error(400, true, {}, "400 Bad Request: The plain HTTP request was sent to HTTPS port\n");
}

ssize_t Connection::receive(char* buf, std::size_t capacity) {
  if (!tls_) return sys::read(socket_.get(), buf, capacity);
  is_read_waiting_writable_ = false;
  std::size_t got = 0;
  switch (tls_->read(buf, capacity, got)) {
    case Io::Done: return static_cast<ssize_t>(got);
    case Io::Again:
      is_read_waiting_writable_ = tls_->wants_write();
      errno = EAGAIN;
      return -1;
    case Io::Eof: return 0;
    case Io::Error:
      SPAWND_LOG_DEBUG("connection %llu from %s: TLS %s failed", static_cast<unsigned long long>(id_),
                       remote_addr_.c_str(), tls_->is_established() ? "read" : "handshake");
      return -1;
  }
  return -1;
}

void Connection::on_writable() {
  last_activity_ms_ = loop_.now_ms();
  if (is_read_waiting_writable_) {
    // The handshake (within a read) waited for the socket to take its flight: go on with it.
    is_read_waiting_writable_ = false;
    on_readable();
    if (state_ == State::Closed) return;
  }
  if (flush() == Io::Error) return;
  if (req_.is_exchange_paused && exchange_ && out_.memory_bytes() < kOutHighWaterBytes / 2) {
    req_.is_exchange_paused = false;
    exchange_->resume();
    if (state_ == State::Closed) return;
  }
  on_response_written();
  if (state_ != State::Closed) update_interest();
}

void Connection::update_interest() {
  if (state_ == State::Closed) return;
  std::size_t unparsed = in_.size() - in_pos_;
  // A body being buffered whole is bounded by max_body_bytes and the server's BodyBudget instead (it spills to a
  // file past its memory threshold); a streamed one by the high-water mark.
  is_read_paused_ = is_read_eof_ || (state_ != State::Lingering &&
                                     ((body_.backlog() > kBodyHighWaterBytes && state_ != State::BufferingBody) ||
                                      (parser_.is_message_done() && unparsed > kMaxPipelinedBytes)));
  std::uint32_t events = 0;
  if (!is_read_paused_ || is_write_waiting_readable_) events |= EPOLLIN;
  if (!out_.is_empty() || is_read_waiting_writable_) events |= EPOLLOUT;
  if (events != interest_) {
    interest_ = events;
    if (!socket_.watch.modify(events)) close();
  }
}

// ---- timers ----

void Connection::arm_timer(std::int64_t timeout_ms) {
  if (timer_) loop_.cancel(timer_);
  timer_ = loop_.add_timer(timeout_ms, [this] {
    timer_ = 0;
    on_timeout();
  });
}

// Only while we wait for the client (its body, or its reading of our response); while a gateway works the
// gateway's own timeout applies.
bool Connection::is_waiting_on_client() const noexcept {
  return (!parser_.is_message_done() && !req_.is_discarding_body) || !out_.is_empty() ||
         (req_.is_discarding_body && state_ == State::Sending);
}

void Connection::on_timeout() {
  const Config& cfg = server_.config();
  switch (state_) {
    case State::Accepted:
    case State::Closed: return;
    case State::Idle:
      if (!parser_.has_partial_head()) {
        close();  // idle keep-alive connection: close quietly
        return;
      }
      [[fallthrough]];  // bytes of a head arrived but not the whole head in time
    case State::ReadingHead:
      SPAWND_LOG_DEBUG("connection %llu from %s: request head not received within %lld ms",
                       static_cast<unsigned long long>(id_), remote_addr_.c_str(),
                       static_cast<long long>(cfg.header_timeout_ms));
      send_error(408, true);
      if (state_ != State::Closed && state_ != State::Lingering) close();
      return;
    case State::Lingering: close(); return;
    case State::BufferingBody:
    case State::Responding:
    case State::Sending:
    case State::Finished: {
      const bool is_waiting = is_waiting_on_client();
      std::int64_t idle = loop_.now_ms() - last_activity_ms_;
      if (is_waiting && idle >= cfg.io_timeout_ms) {
        SPAWND_LOG_DEBUG("connection %llu from %s: no progress for %lld ms, closing",
                         static_cast<unsigned long long>(id_), remote_addr_.c_str(), static_cast<long long>(idle));
        close();
        return;
      }
      arm_timer(is_waiting ? cfg.io_timeout_ms - idle : cfg.io_timeout_ms);
      return;
    }
  }
}

// ---- requests ----

void Connection::process_input() {
  while (state_ != State::Closed && state_ != State::Lingering) {
    if (parser_.is_message_done() || in_pos_ == in_.size()) break;
    auto outcome = parser_.feed(std::string_view(in_).substr(in_pos_), decoded_);
    in_pos_ += outcome.consumed;
    if (outcome.status == RequestParser::Status::Error) {
      retire_exchange();
      send_error(parser_.error_status(), true);
      return;
    }
    bool is_new_head = false;
    if (!req_.request) {
      if (parser_.is_head_done()) {
        on_request_head();
        is_new_head = true;
      } else if (state_ == State::Idle && parser_.has_partial_head()) {
        advance(State::ReadingHead);  // the first byte of a head: the header timeout runs from now
      }
    }
    if (req_.request) {
      // Body bytes that came with the head are in body_ before the request is routed: a gateway started at once
      // (a complete body) finds them there.
      const bool has_progress = !decoded_.empty() || parser_.is_message_done();
      if (!take_decoded_body()) return;
      decoded_.clear();
      if (is_new_head) {
        dispatch(req_.site->router().route(req_.request->path));
        if (state_ == State::Closed) return;
      }
      if (has_progress) after_body_progress();
    }
    if (outcome.consumed == 0) break;
  }
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
}

void Connection::process_input_and_update() {
  process_input();
  if (state_ != State::Closed) update_interest();
}

// The head is complete: it becomes req_.request. The state moves on once the request is routed (dispatch()).
void Connection::on_request_head() {
  req_.request = parser_.take_request();
  Request& r = *req_.request;
  r.id = server_.next_request_id();
  r.remote_addr = remote_addr_;
  r.remote_port = remote_port_;
  r.local_addr = local_addr_;
  r.local_port = local_port_;
  if (tls_) r.tls_protocol = tls_->protocol();
  req_.sites = server_.sites();
  req_.site = &req_.sites->select(r);
  arm_timer(server_.config().io_timeout_ms);  // the head is in: from now on the I/O timeout applies
  req_.start_ns = monotonic_ns();
  req_.is_keep_alive = r.is_keep_alive && !is_shutting_down_ && !server_.is_shutting_down();
  req_.response = ResponseWriter(r.is_head(), r.version_minor);
}

// Answers req_.request as `route` says: from the static files, or through a gateway, once the body is whole if it
// is buffered.
void Connection::dispatch(Route route) {
  Request& r = *req_.request;
  if (!route.path.empty()) r.path = std::move(route.path);  // a directory's index file; REQUEST_URI stays r.target
  // "OPTIONS *" (the parser lets no other method have the asterisk-form) asks about the server, over either transport.
  const bool is_options_asterisk = r.target == "*";
  const bool is_redirect = !tls_ && server_.config().redirect_https && !is_options_asterisk &&
                           !r.path.starts_with("/.well-known/acme-challenge/");
  if (is_options_asterisk || is_redirect || route.gateway == nullptr || server_.is_status_path(r.path)) {
    req_.is_discarding_body = true;
    // We answer without reading a body the client holds back for "100 Continue": it may never come (RFC 9110
    // §10.1.1), so the connection cannot be reused.
    if (r.expects_continue && r.has_body && !req_.has_continued) req_.is_keep_alive = false;
    if (is_options_asterisk) {
      send_server_options();
      return;
    }
    if (is_redirect) {
      send_redirect_https();
      return;
    }
    if (server_.is_status_path(r.path)) {
      send_status();  // before any mount or file: the status page's path is the server's
      return;
    }
    req_.served_by = ServedBy::Static;
    if (route.status != 0) {
      send_error(route.status, false);  // --deny, or an extension-routed script that does not exist
      return;
    }
    send_static();
    return;
  }
  Gateway& gateway = *route.gateway;
  req_.served_by = gateway.served_by();
  // Read the whole body before a handler slot is taken (a slow sender then holds only its connection), unless the
  // handler streams it; a chunked body is read whole anyway: every gateway passes CONTENT_LENGTH (RFC 3875 §4.1.2).
  const bool will_buffer = r.has_body && !parser_.is_message_done() &&
                           (server_.config().request_buffering || r.is_chunked);
  const BodyBudget& budget = server_.body_budget();
  if (will_buffer && r.content_length &&
      *r.content_length - body_.size() > budget.total_limit() - budget.total_in_use()) {
    SPAWND_LOG_WARN("request %llu: its %llu-byte body does not fit in the request buffers (%llu of %llu bytes in use): "
                    "503",
                    static_cast<unsigned long long>(r.id), static_cast<unsigned long long>(*r.content_length),
                    static_cast<unsigned long long>(budget.total_in_use()),
                    static_cast<unsigned long long>(budget.total_limit()));
    server_.site_metrics(req_.site->name()).count_rejected_body_buffers();
    send_error(503, true);
    return;
  }
  if (r.expects_continue && r.has_body && !req_.has_continued) {
    out_.tail() += kContinueResponse;
    req_.has_continued = true;
    if (flush() == Io::Error) return;
    update_interest();
    if (state_ == State::Closed) return;  // epoll_ctl failed
  }
  if (will_buffer) {
    req_.buffering_for = &gateway;
    advance(State::BufferingBody);
    return;
  }
  if (r.is_chunked && parser_.is_message_done()) r.content_length = parser_.body_bytes();
  start_exchange(gateway);
}

void Connection::start_exchange(Gateway& gateway) {
  if (state_ != State::Responding) advance(State::Responding);  // already there after a local redirect
  req_.site->note_gateway_request();  // its handler may write the site's database: wake an idle keeper
  exchange_ = gateway.start(*req_.request, *this, *this);
  if (state_ != State::Responding || !exchange_) {
    // Closed, or answered synchronously (404, 503, ...): the exchange, if any, is done.
    retire_exchange();
    if (state_ == State::Responding) send_error(500, true);
  }
}

// Moves what the parser decoded into body_ (or drops it). False if the connection answered an error instead.
bool Connection::take_decoded_body() {
  if (decoded_.empty() || req_.is_discarding_body) return true;
  // A body being buffered whole may spill to a file; a streamed one stays in memory, bounded by backpressure.
  auto outcome = body_.append(decoded_, state_ == State::BufferingBody || !exchange_);
  if (outcome == RequestBodyBuffer::Append::Ok) return true;
  decoded_.clear();
  retire_exchange();
  if (outcome == RequestBodyBuffer::Append::OverBudget) {
    SPAWND_LOG_WARN("request %llu: request bodies fill the server's buffers (%llu bytes in use): 503",
                    static_cast<unsigned long long>(req_.request->id),
                    static_cast<unsigned long long>(server_.body_budget().total_in_use()));
    server_.site_metrics(req_.site->name()).count_rejected_body_buffers();
    send_error(503, true);
  } else {
    SPAWND_LOG_ERROR("request %llu: cannot buffer the request body in %s: %s",
                     static_cast<unsigned long long>(req_.request->id), server_.config().body_temp_dir.c_str(),
                     std::strerror(errno));
    send_error(500, true);
  }
  return false;
}

void Connection::after_body_progress() {
  if (req_.is_discarding_body) {
    body_.clear();
    if (parser_.is_message_done()) on_response_written();
    return;
  }
  if (state_ == State::BufferingBody) {
    if (!parser_.is_message_done()) return;
    if (req_.request->is_chunked) req_.request->content_length = parser_.body_bytes();
    start_exchange(*req_.buffering_for);
    return;
  }
  if (exchange_) exchange_->on_request_body();
}

// ---- between requests ----

void Connection::next_request() {
  if (state_ != State::Finished) return;
  // The exchanges of the request are gone before its Request is (gateway.h). This runs as deferred work, never
  // inside an exchange's own callback.
  assert(!exchange_);
  retired_exchanges_.clear();
  req_ = {};
  body_.clear();
  parser_.resume_next();
  if (is_shutting_down_ || server_.is_shutting_down()) {
    close();
    return;
  }
  advance(State::Idle);
  process_input_and_update();
}

void Connection::start_lingering_close() {
  advance(State::Lingering);
  update_interest();
}

// ---- RequestBody ----

std::string_view Connection::available() const { return body_.available(); }

void Connection::consume(std::size_t n) {
  body_.consume(n);
  if (is_read_paused_) {
    update_interest();
    // Reading resumes on the next EPOLLIN; bytes already read but not parsed are parsed now.
    if (!is_read_paused_ && in_pos_ < in_.size()) defer(&Connection::process_input_and_update);
  }
}

bool Connection::is_complete() const {
  return parser_.is_message_done() || !req_.request || !req_.request->has_body;
}

}  // namespace spawnd::server
