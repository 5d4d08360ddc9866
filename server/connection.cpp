#include "server/connection.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/http_status.h"
#include "common/log.h"
#include "common/sys.h"
#include "server/server.h"
#include "server/sock_addr.h"
#include "server/static_files.h"

namespace spawnd::server {

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxReadsPerEvent = 4;  // then let other connections run (redis NET_MAX_WRITES_PER_EVENT, for reads)
// Decoded body bytes buffered for an exchange before we stop reading from the client (backpressure).
constexpr std::size_t kBodyHighWaterBytes = 256 * 1024;
// Response bytes buffered before the exchange is asked to pause (Io::Again).
constexpr std::size_t kOutHighWaterBytes = 256 * 1024;
// Unparsed pipelined bytes we accept while a response is still being produced.
constexpr std::size_t kMaxPipelinedBytes = 64 * 1024;
// sendfile bytes per wakeup, so that one large download cannot starve the other connections.
constexpr std::uint64_t kMaxSendfileBytesPerEvent = 4 * 1024 * 1024;
// After an error response that leaves request bytes unread, how long we keep reading (and discarding) before the
// close, so that the client sees the response rather than a TCP reset (nginx's lingering_close).
constexpr std::int64_t kLingerMs = 2000;

int status_for(GatewayError e) {
  switch (e) {
    case GatewayError::BadGateway: return 502;
    case GatewayError::GatewayTimeout: return 504;
    case GatewayError::ServiceUnavailable: return 503;
    case GatewayError::Internal: return 500;
  }
  return 500;
}

// Fields the connection owns (hop-by-hop, RFC 9110 §7.6.1, and framing): never copied from a gateway's head.
bool is_connection_owned_field(std::string_view name) {
  return iequals(name, "Connection") || iequals(name, "Keep-Alive") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Content-Length") || iequals(name, "Date") || iequals(name, "Server") ||
         iequals(name, "Upgrade") || iequals(name, "Proxy-Connection") || iequals(name, "TE") ||
         iequals(name, "Trailer");
}

}  // namespace

Connection::Connection(Server& server, Fd socket, std::uint64_t id, const sockaddr_storage& peer)
    : server_(server),
      loop_(server.loop()),
      socket_(std::move(socket)),
      id_(id),
      parser_(server.config().max_header_bytes, server.config().max_body_bytes),
      body_(server.body_budget(), server.config().body_buffer_bytes, server.config().body_temp_dir) {
  remote_addr_ = format_address(peer, remote_port_);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&local), &len) == 0)
    local_addr_ = format_address(local, local_port_);
}

Connection::~Connection() {
  // First: a queued or cancelled exchange still references request_, body_ and this sink (gateway.h).
  retired_exchanges_.clear();
  exchange_.reset();
  if (timer_) loop_.cancel(timer_);
}

bool Connection::start() {
  interest_ = EPOLLIN;
  if (!loop_.add(socket_.get(), interest_, [this](std::uint32_t events) { on_io(events); })) return false;
  state_ = State::KeepAlive;  // nothing received yet: the header timeout starts with the first byte
  last_activity_ms_ = loop_.now_ms();
  arm_timer(server_.config().header_timeout_ms);
  return true;
}

bool Connection::is_idle() const noexcept {
  return state_ == State::KeepAlive && !parser_.has_partial_head() && in_pos_ == in_.size();
}

void Connection::close() {
  if (state_ == State::Closing) return;
  state_ = State::Closing;
  if (timer_) {
    loop_.cancel(timer_);
    timer_ = 0;
  }
  loop_.remove(socket_.get());
  socket_.reset();
  file_.reset();
  retire_exchange();  // cancels it: a CGI child is signalled
  if (request_ && !is_response_complete_ && is_head_sent_) {
    SPAWND_LOG_DEBUG("request %llu: connection closed before the response was complete",
                     static_cast<unsigned long long>(request_->id));
  }
  server_.release(*this);
}

void Connection::on_shutdown() {
  is_shutting_down_ = true;
  is_keep_alive_ = false;
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
    if (state_ == State::Closing) return;
  }
  if (events & EPOLLIN) {
    on_readable();
  } else if (events & EPOLLHUP) {
    close();  // both directions gone
  }
}

void Connection::on_readable() {
  if (is_lingering_) {
    char scratch[16 * 1024];
    for (;;) {
      ssize_t n = sys::read(socket_.get(), scratch, sizeof scratch);
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
    std::size_t old = in_.size();
    in_.resize(old + kReadChunkBytes);
    ssize_t n = sys::read(socket_.get(), in_.data() + old, kReadChunkBytes);
    if (n > 0) {
      in_.resize(old + static_cast<std::size_t>(n));
      last_activity_ms_ = loop_.now_ms();
      process_input();
      if (state_ == State::Closing) return;
      if (static_cast<std::size_t>(n) < kReadChunkBytes) break;
      continue;
    }
    in_.resize(old);
    if (n < 0 && errno == EAGAIN) break;
    if (n == 0 && !exchange_ && request_ && parser_.is_message_done() &&
        (pending_output() > 0 || file_remaining_ > 0)) {
      // EOF after a whole request while a static response is still being sent: the client shut down its sending
      // side only (`nc -N`, some HTTP/1.0 tools). Finishing costs nothing, and a client that is really gone shows
      // up as EPIPE on send; so send the rest, then close, as nginx does for static files.
      is_read_eof_ = true;
      is_keep_alive_ = false;
      break;
    }
    // EOF or a read error. A client that goes away while its request is being answered is treated as gone for
    // good (as nginx and Go's net/http do): the exchange is cancelled, which kills a CGI child.
    close();
    return;
  }
  update_interest();
}

void Connection::on_writable() {
  last_activity_ms_ = loop_.now_ms();
  if (flush() == Io::Error) return;
  if (is_exchange_paused_ && exchange_ && pending_output() < kOutHighWaterBytes / 2) {
    is_exchange_paused_ = false;
    exchange_->resume();
    if (state_ == State::Closing) return;
  }
  on_response_written();
  if (state_ != State::Closing) update_interest();
}

void Connection::update_interest() {
  if (state_ == State::Closing) return;
  std::size_t unparsed = in_.size() - in_pos_;
  // A body being buffered whole is bounded by max_body_bytes and the server's BodyBudget instead (it spills to a
  // file past its memory threshold); a streamed one by the high-water mark.
  is_read_paused_ = is_read_eof_ ||
                    (!is_lingering_ && ((body_.backlog() > kBodyHighWaterBytes && !is_buffering_body_) ||
                                        (parser_.is_message_done() && unparsed > kMaxPipelinedBytes)));
  std::uint32_t events = 0;
  if (!is_read_paused_) events |= EPOLLIN;
  if (pending_output() > 0 || file_remaining_ > 0) events |= EPOLLOUT;
  if (events != interest_) {
    interest_ = events;
    if (!loop_.modify(socket_.get(), events)) close();
  }
}

// ---- timers ----

void Connection::arm_timer(std::int64_t timeout_ms) {
  if (timer_) loop_.cancel(timer_);
  timeout_ms_ = timeout_ms;
  timer_ = loop_.add_timer(timeout_ms, [this] {
    timer_ = 0;
    on_timeout();
  });
}

void Connection::on_timeout() {
  const Config& cfg = server_.config();
  switch (state_) {
    case State::KeepAlive:
      if (!parser_.has_partial_head()) {
        close();  // idle keep-alive connection: close quietly
        return;
      }
      [[fallthrough]];  // bytes of a head arrived but not the whole head in time
    case State::ReadingRequest:
      SPAWND_LOG_DEBUG("connection %llu from %s: request head not received within %lld ms",
                       static_cast<unsigned long long>(id_), remote_addr_.c_str(),
                       static_cast<long long>(cfg.header_timeout_ms));
      send_error(408, true);
      if (state_ != State::Closing && !is_lingering_) close();
      return;
    case State::AwaitingGateway: {
      if (is_lingering_) {
        close();
        return;
      }
      // Only time out while we wait for the client (its body, or its reading of our response); while a gateway
      // works the gateway's own timeout applies.
      bool is_waiting_on_client = (!parser_.is_message_done() && !is_discarding_body_) || pending_output() > 0 ||
                                  file_remaining_ > 0 || (is_discarding_body_ && is_response_complete_);
      std::int64_t idle = loop_.now_ms() - last_activity_ms_;
      if (is_waiting_on_client && idle >= cfg.io_timeout_ms) {
        SPAWND_LOG_DEBUG("connection %llu from %s: no progress for %lld ms, closing",
                         static_cast<unsigned long long>(id_), remote_addr_.c_str(), static_cast<long long>(idle));
        close();
        return;
      }
      arm_timer(is_waiting_on_client ? cfg.io_timeout_ms - idle : cfg.io_timeout_ms);
      return;
    }
    case State::Closing: return;
  }
}

// ---- requests ----

void Connection::process_input() {
  while (state_ != State::Closing && !is_lingering_) {
    if (parser_.is_message_done() || in_pos_ == in_.size()) break;
    auto outcome = parser_.feed(std::string_view(in_).substr(in_pos_), decoded_);
    in_pos_ += outcome.consumed;
    if (outcome.status == RequestParser::Status::Error) {
      retire_exchange();
      send_error(parser_.error_status(), true);
      return;
    }
    bool is_new_head = false;
    if (!request_) {
      if (parser_.is_head_done()) {
        on_request_head();
        is_new_head = true;
      } else if (state_ == State::KeepAlive && parser_.has_partial_head()) {
        state_ = State::ReadingRequest;  // the first byte of a head: the header timeout runs from now
        arm_timer(server_.config().header_timeout_ms);
      }
    }
    if (request_) {
      // Body bytes that came with the head are in body_ before the request is routed: a gateway started at once
      // (a complete body) finds them there.
      const bool has_progress = !decoded_.empty() || parser_.is_message_done();
      if (!take_decoded_body()) return;
      decoded_.clear();
      if (is_new_head) {
        dispatch();
        if (state_ == State::Closing) return;
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

void Connection::on_request_head() {
  request_ = parser_.take_request();
  Request& r = *request_;
  r.id = server_.next_request_id();
  r.remote_addr = remote_addr_;
  r.remote_port = remote_port_;
  r.local_addr = local_addr_;
  r.local_port = local_port_;
  state_ = State::AwaitingGateway;
  arm_timer(server_.config().io_timeout_ms);
  is_keep_alive_ = r.is_keep_alive && !is_shutting_down_ && !server_.is_shutting_down();
  is_head_request_ = r.is_head();
}

// Routes request_ to a gateway or to the static files.
void Connection::dispatch() {
  Request& r = *request_;
  Gateway* gateway = server_.router().route(r.path).gateway;
  if (!gateway) {
    is_discarding_body_ = true;
    // We answer without reading a body the client holds back for "100 Continue": it may never come (RFC 9110
    // §10.1.1), so the connection cannot be reused.
    if (r.expects_continue && r.has_body && !has_continued_) is_keep_alive_ = false;
    send_static();
    return;
  }
  // Read the whole body before a handler slot is taken (a slow sender then holds only its connection), unless the
  // handler streams it; a chunked body is read whole anyway for a gateway that needs its length.
  const bool will_buffer = r.has_body && !parser_.is_message_done() &&
                           (server_.config().request_buffering || (r.is_chunked && gateway->needs_content_length()));
  const BodyBudget& budget = server_.body_budget();
  if (will_buffer && r.content_length &&
      *r.content_length - body_.size() > budget.total_limit() - budget.total_in_use()) {
    SPAWND_LOG_WARN("request %llu: its %llu-byte body does not fit in the request buffers (%llu of %llu bytes in use): "
                    "503",
                    static_cast<unsigned long long>(r.id), static_cast<unsigned long long>(*r.content_length),
                    static_cast<unsigned long long>(budget.total_in_use()),
                    static_cast<unsigned long long>(budget.total_limit()));
    send_error(503, true, "Retry-After: 1");
    return;
  }
  if (r.expects_continue && r.has_body && !has_continued_) {
    out_ += "HTTP/1.1 100 Continue\r\n\r\n";
    has_continued_ = true;
    if (flush() == Io::Error) return;
    update_interest();
  }
  if (will_buffer) {
    is_buffering_body_ = true;
    pending_gateway_ = gateway;
    return;
  }
  if (r.is_chunked && parser_.is_message_done()) r.content_length = parser_.body_bytes();
  start_exchange(*gateway);
}

void Connection::start_exchange(Gateway& gateway) {
  exchange_ = gateway.start(*request_, *this, *this);
  if (state_ == State::Closing || is_response_complete_ || !exchange_) {
    // Closed, or answered synchronously (404, 503, ...): the exchange, if any, is done.
    retire_exchange();
    if (state_ != State::Closing && !is_response_complete_) send_error(500, true);
  }
}

// Moves what the parser decoded into body_ (or drops it). False if the connection answered an error instead.
bool Connection::take_decoded_body() {
  if (decoded_.empty() || is_discarding_body_) return true;
  // A body being buffered whole may spill to a file; a streamed one stays in memory, bounded by backpressure.
  auto outcome = body_.append(decoded_, is_buffering_body_ || !exchange_);
  if (outcome == RequestBodyBuffer::Append::Ok) return true;
  decoded_.clear();
  retire_exchange();
  if (outcome == RequestBodyBuffer::Append::OverBudget) {
    SPAWND_LOG_WARN("request %llu: request bodies fill the server's buffers (%llu bytes in use): 503",
                    static_cast<unsigned long long>(request_->id),
                    static_cast<unsigned long long>(server_.body_budget().total_in_use()));
    send_error(503, true, "Retry-After: 1");
  } else {
    SPAWND_LOG_ERROR("request %llu: cannot buffer the request body in %s: %s",
                     static_cast<unsigned long long>(request_->id), server_.config().body_temp_dir.c_str(),
                     std::strerror(errno));
    send_error(500, true);
  }
  return false;
}

void Connection::after_body_progress() {
  if (is_discarding_body_) {
    body_.clear();
    if (parser_.is_message_done()) on_response_written();
    return;
  }
  if (is_buffering_body_) {
    if (!parser_.is_message_done()) return;
    is_buffering_body_ = false;
    if (request_->is_chunked) request_->content_length = parser_.body_bytes();
    start_exchange(*pending_gateway_);
    return;
  }
  if (exchange_) exchange_->on_request_body();
}

// ---- RequestBody ----

std::string_view Connection::available() const { return body_.available(); }

void Connection::consume(std::size_t n) {
  body_.consume(n);
  if (is_read_paused_) {
    update_interest();
    // Reading resumes on the next EPOLLIN; bytes already read but not parsed are parsed now.
    if (!is_read_paused_ && in_pos_ < in_.size()) loop_.defer([&srv = server_, id = id_] {
      if (Connection* c = srv.find(id)) c->process_input_and_update();
    });
  }
}

bool Connection::is_complete() const { return parser_.is_message_done() || !request_ || !request_->has_body; }

// ---- responses ----

void Connection::begin_response(int status, const std::string& reason,
                                const std::vector<std::pair<std::string, std::string>>& fields,
                                std::optional<std::uint64_t> content_length) {
  status_ = status;
  is_body_suppressed_ = is_head_request_ || status == 204 || status == 304 || status < 200;
  response_out_start_ = out_.size();
  is_head_on_wire_ = false;
  std::string& o = out_;
  o += "HTTP/1.1 ";
  o += std::to_string(status);
  o += ' ';
  o += reason.empty() ? reason_phrase(status) : reason;
  o += "\r\nDate: ";
  o += server_.http_date();
  o += "\r\nServer: spawnd\r\n";
  for (const auto& [name, value] : fields) {
    if (is_connection_owned_field(name)) continue;
    o += name;
    o += ": ";
    o += value;
    o += "\r\n";
  }
  if (content_length) {
    if (status != 204 && status != 304) {
      o += "Content-Length: ";
      o += std::to_string(*content_length);
      o += "\r\n";
    }
  } else if (!is_body_suppressed_) {
    if (request_ && request_->version_minor >= 1) {
      o += "Transfer-Encoding: chunked\r\n";
      is_chunked_out_ = true;
    } else {
      is_keep_alive_ = false;  // HTTP/1.0 without a length: the close delimits the body (RFC 9112 §6.3)
    }
  }
  if (!is_keep_alive_) {
    o += "Connection: close\r\n";
  } else if (request_ && request_->version_minor == 0) {
    o += "Connection: keep-alive\r\n";
  }
  o += "\r\n";
  is_head_sent_ = true;
}

void Connection::append_body(std::string_view bytes) {
  if (is_body_suppressed_ || bytes.empty()) return;
  body_bytes_sent_ += bytes.size();
  if (is_chunked_out_) {
    char size_line[32];
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", bytes.size());
    out_.append(size_line, static_cast<std::size_t>(n));
    out_ += bytes;
    out_ += "\r\n";
  } else {
    out_ += bytes;
  }
}

// Destroying an exchange cancels it; never inside its own callback, so after this dispatch pass (or with the
// connection, if that goes first: ~Connection destroys retired exchanges before anything they reference).
void Connection::retire_exchange() {
  if (!exchange_) return;
  if (retired_exchanges_.empty()) {
    loop_.defer([&srv = server_, id = id_] {
      if (Connection* c = srv.find(id)) c->retired_exchanges_.clear();
    });
  }
  retired_exchanges_.push_back(std::move(exchange_));
}

// The exchange made its last call. Whatever of the body it did not read is dropped; keep-alive still needs it
// read off the socket.
void Connection::end_exchange() {
  retire_exchange();
  is_exchange_paused_ = false;
  is_discarding_body_ = true;
  body_.clear();
}

void Connection::on_head(ResponseHead head) {
  begin_response(head.status, head.reason, head.fields, head.content_length);
}

Io Connection::on_body(std::string_view bytes) {
  if (state_ == State::Closing) return Io::Error;
  append_body(bytes);
  return after_gateway_output();
}

Io Connection::after_gateway_output() {
  schedule_flush();
  if (pending_output() > kOutHighWaterBytes) {
    is_exchange_paused_ = true;
    return Io::Again;
  }
  return Io::Done;
}

// Gateway output is sent once per loop turn, after the dispatch pass, so that a response whose head, body and end
// arrive in one read of the child's stdout leaves in one send().
void Connection::schedule_flush() {
  if (is_flush_scheduled_) return;
  is_flush_scheduled_ = true;
  loop_.defer([&srv = server_, id = id_] {
    if (Connection* c = srv.find(id); c && c->state_ != State::Closing) {
      c->is_flush_scheduled_ = false;
      c->on_writable();
    }
  });
}

Io Connection::on_raw(std::string_view bytes) {
  if (state_ == State::Closing) return Io::Error;
  if (!is_raw_) {
    is_raw_ = true;
    is_head_sent_ = true;
    is_keep_alive_ = false;  // we cannot know how an NPH script framed its body: the close ends it
    status_ = 200;
    if (bytes.size() >= 12 && bytes.substr(0, 5) == "HTTP/") status_ = std::atoi(std::string(bytes.substr(9, 3)).c_str());
  }
  body_bytes_sent_ += bytes.size();
  out_ += bytes;
  return after_gateway_output();
}

void Connection::on_end(std::optional<GatewayError> error) {
  if (state_ == State::Closing) return;
  end_exchange();
  if (error) {
    if (is_head_sent_ && !is_head_on_wire_ && !is_raw_) {
      // The head is still only in our buffer: take it back and answer the error instead.
      out_.resize(response_out_start_);
      is_head_sent_ = false;
      is_chunked_out_ = false;
      body_bytes_sent_ = 0;
    }
    if (is_head_sent_) {
      close();  // too late for an error status: abort so that the client sees an incomplete response
      return;
    }
    int status = status_for(*error);
    send_error(status, false, status == 503 ? "Retry-After: 1" : nullptr);
    return;
  }
  if (!is_head_sent_) {
    send_error(502, false);
    return;
  }
  if (is_chunked_out_ && !is_body_suppressed_) out_ += "0\r\n\r\n";
  is_response_complete_ = true;
  schedule_flush();
}

void Connection::on_local_redirect(std::string location) {
  if (state_ == State::Closing) return;
  end_exchange();
  // RFC 3875 §6.2.2: the router rewrites the request as a GET of `location` without a body (and bounds the chain).
  if (!server_.router().route_local_redirect(*request_, location, local_redirects_)) {
    send_error(500, false);
    return;
  }
  dispatch();  // a HEAD request stays HEAD towards the client: is_head_request_ still suppresses the body
}

void Connection::send_static() {
  StaticResponse r = server_.static_files().serve(*request_);
  if (r.file) {
    begin_response(r.status, {}, r.fields, r.length);
    if (!is_body_suppressed_ && r.length > 0) {
      file_ = std::move(r.file);
      file_offset_ = r.offset;
      file_remaining_ = r.length;
      body_bytes_sent_ = r.length;
    }
  } else {
    begin_response(r.status, {}, r.fields,
                   r.status == 304 ? std::nullopt : std::optional<std::uint64_t>(r.body.size()));
    append_body(r.body);
  }
  is_response_complete_ = true;
  if (flush() == Io::Error) return;
  on_response_written();
  if (state_ != State::Closing) update_interest();
}

void Connection::send_error(int status, bool must_close, const char* extra_field) {
  if (state_ == State::Closing) return;
  if (is_head_sent_) {
    close();
    return;
  }
  if (!request_) {
    // The head never parsed: answer as to an HTTP/1.1 request without a method (logged as "-").
    request_.emplace();
    request_->id = server_.next_request_id();
    request_->remote_addr = remote_addr_;
    request_->remote_port = remote_port_;
    state_ = State::AwaitingGateway;
  }
  if (must_close) is_keep_alive_ = false;
  is_discarding_body_ = true;
  is_buffering_body_ = false;
  body_.clear();
  std::vector<std::pair<std::string, std::string>> fields{{"Content-Type", "text/html; charset=utf-8"}};
  if (extra_field) {
    std::string_view f(extra_field);
    auto colon = f.find(": ");
    fields.emplace_back(std::string(f.substr(0, colon)), std::string(f.substr(colon + 2)));
  }
  std::string page = error_page(status);
  begin_response(status, {}, fields, page.size());
  append_body(page);
  is_response_complete_ = true;
  if (flush() == Io::Error) return;
  on_response_written();
  if (state_ != State::Closing) update_interest();
}

Io Connection::flush() {
  while (pending_output() > 0) {
    // MSG_MORE when a file follows: the head and the start of the file leave in one segment (nginx's tcp_nopush).
    int flags = MSG_NOSIGNAL | (file_remaining_ > 0 ? MSG_MORE : 0);
    ssize_t n = ::send(socket_.get(), out_.data() + out_pos_, pending_output(), flags);
    if (n > 0) {
      out_pos_ += static_cast<std::size_t>(n);
      if (out_pos_ > response_out_start_) is_head_on_wire_ = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Io::Again;
    close();  // EPIPE, ECONNRESET: the client is gone
    return Io::Error;
  }
  out_.clear();
  out_pos_ = 0;
  response_out_start_ = 0;
  std::uint64_t sent_now = 0;
  while (file_remaining_ > 0) {
    if (sent_now >= kMaxSendfileBytesPerEvent) return Io::Again;  // EPOLLOUT (level) brings us back
    auto off = static_cast<off_t>(file_offset_);
    std::size_t want = file_remaining_ < (1u << 20) ? static_cast<std::size_t>(file_remaining_) : (1u << 20);
    ssize_t n = ::sendfile(socket_.get(), file_.get(), &off, want);
    if (n > 0) {
      file_offset_ += static_cast<std::uint64_t>(n);
      file_remaining_ -= static_cast<std::uint64_t>(n);
      sent_now += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Io::Again;
    // n == 0: the file shrank under us; the promised Content-Length cannot be met, so abort.
    if (n == 0) SPAWND_LOG_WARN("request %llu: file shrank while being sent", static_cast<unsigned long long>(request_ ? request_->id : 0));
    close();
    return Io::Error;
  }
  file_.reset();
  return Io::Done;
}

void Connection::on_response_written() {
  if (state_ == State::Closing || is_lingering_ || !request_ || !is_response_complete_) return;
  if (pending_output() > 0 || file_remaining_ > 0) return;
  if (!is_logged_) {
    is_logged_ = true;
    server_.access_log().record(*request_, status_, body_bytes_sent_);
  }
  if (!is_keep_alive_) {
    if (!is_read_eof_ && (!parser_.is_message_done() || in_pos_ < in_.size())) {
      start_lingering_close();
    } else {
      close();
    }
    return;
  }
  if (!parser_.is_message_done()) return;  // the rest of the body is still arriving; it is discarded
  // Parse the next request after this dispatch pass, so that we never re-enter a gateway from its own callback.
  loop_.defer([&srv = server_, id = id_] {
    if (Connection* c = srv.find(id)) c->next_request();
  });
  is_response_complete_ = false;  // stop a second scheduling before the deferred call runs
  is_awaiting_next_ = true;
}

void Connection::next_request() {
  if (state_ == State::Closing || !is_awaiting_next_) return;
  is_awaiting_next_ = false;
  request_.reset();
  has_continued_ = false;
  is_head_request_ = false;
  local_redirects_ = 0;
  is_discarding_body_ = false;
  is_buffering_body_ = false;
  pending_gateway_ = nullptr;
  status_ = 0;
  is_head_sent_ = false;
  is_chunked_out_ = false;
  is_body_suppressed_ = false;
  is_response_complete_ = false;
  is_exchange_paused_ = false;
  is_raw_ = false;
  is_logged_ = false;
  body_bytes_sent_ = 0;
  body_.clear();
  parser_.resume_next();
  if (is_shutting_down_ || server_.is_shutting_down()) {
    close();
    return;
  }
  state_ = State::KeepAlive;
  arm_timer(server_.config().keepalive_timeout_ms);
  process_input_and_update();
}

void Connection::process_input_and_update() {
  process_input();
  if (state_ != State::Closing) update_interest();
}

void Connection::start_lingering_close() {
  is_lingering_ = true;
  ::shutdown(socket_.get(), SHUT_WR);
  in_.clear();
  in_pos_ = 0;
  arm_timer(kLingerMs);
  update_interest();
}

}  // namespace spawnd::server
