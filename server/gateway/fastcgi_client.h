// server/gateway/fastcgi_client.h — the inside of spawnd's FastCGI client (fastcgi_gateway.h is its face; only the
// fastcgi_*.cpp files include this): FastCgiApp, one application with its connections (and, in managed mode, its
// worker processes) and its admission queue (fastcgi_client.cpp); FastCgiSlot, one connection; FastCgiExchange, one
// request on it (FastCGI 1.0: FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN out; FCGI_STDOUT through the CGI relay,
// FCGI_STDERR to the log, FCGI_END_REQUEST in). Loop thread only.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/fcgi_record.h"
#include "common/fd.h"
#include "common/log.h"
#include "server/event_loop.h"
#include "server/gateway/admission.h"
#include "server/gateway/cgi_relay.h"
#include "server/gateway/fastcgi_gateway.h"
#include "server/gateway/process.h"
#include "server/gateway/supervisor.h"

namespace spawnd::server {

inline constexpr std::size_t kFcgiReadChunkBytes = 64 * 1024;
inline constexpr int kFcgiMaxReadsPerEvent = 4;
inline constexpr std::size_t kFcgiMaxUnsentBytes = 256 * 1024;  // stop taking request body bytes while this much is unsent
inline constexpr std::uint16_t kFcgiRequestId = 1;  // one request per connection at a time
inline constexpr int kFcgiListenBacklog = 64;
// A request is pipelined behind a managed worker's running one (FastCgiApp::pipeline) only if its body, already
// received whole, is at most this long: the whole request is then kept for a retry elsewhere.
inline constexpr std::size_t kFcgiPipelineMaxBodyBytes = 16 * 1024;

inline unsigned long long fcgi_ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

// ---- One application: its connections (and, managed, its worker processes) and its queue. ---------------------

struct FastCgiSlot {
  enum class State { Closed, Connecting, Idle, Busy, Aborting };
  std::size_t index = 0;
  FastCgiAddress address;
  bool is_available = false;  // external: always; managed: its worker runs and did not refuse a connection
  std::unique_ptr<SupervisedProcess> worker;  // managed: the worker process (null: external)
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
  // Managed: the request sent behind `ex` (pipelined, see FastCgiApp::pipeline), which the worker reads when it has
  // ended `ex`; its bytes start at out[next_offset] while they are in `out`. `is_next_orphaned`: that request's
  // exchange went away, but its records are sent: the worker will still run it, and its output is discarded.
  FastCgiExchange* next = nullptr;
  bool is_next_orphaned = false;
  std::size_t next_offset = 0;
  bool is_peer_closed = false;  // the drop under way comes from reading EOF or an error: every record was handled
  StderrLines stderr_lines;
  EventLoop::TimerId abort_timer = 0;
  EventLoop::TimerId idle_timer = 0;  // external, kept open and Idle: closes the connection after idle_timeout_ms
};

class FastCgiApp {
 public:
  // Managed: `managed` is the gateway (its socket directory, /dev/null and child table), `program` the handler's
  // path, started as `slots` workers. External: `managed` is null and `address` is every slot's. `config` gives the
  // limits (max_queue, timeout_ms, max_requests, keep_conn, idle_timeout_ms).
  FastCgiApp(EventLoop& loop, const FastCgiConfig& config, FastCgiGateway* managed, std::size_t id, std::string name,
             std::string program, const FastCgiAddress* address, std::size_t slots);
  ~FastCgiApp();

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // Whether requests ask the application to keep the connection open (FCGI_KEEP_CONN): managed workers always,
  // an external application with keep_conn > 0.
  [[nodiscard]] bool keeps_connections() const noexcept { return !program_.empty() || config_.keep_conn > 0; }
  // Starts `ex` on a free connection, or queues it. Returns false (nothing started) if the queue is full.
  bool admit(FastCgiExchange& ex);
  [[nodiscard]] Admission& admission() noexcept { return admission_; }
  // Connections carrying a request, the queue and its refusals (status page).
  [[nodiscard]] GatewayLoad load() const;
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
  // Admission's try_start: `ex` on a free connection (true), pipelined behind a managed worker's running request
  // (true), or answered 502 if the application is unreachable (true), or false if it has to wait.
  bool try_start(FastCgiExchange& ex);
  void attach(FastCgiSlot& slot, FastCgiExchange& ex);
  // Managed workers: a busy slot `ex` can be sent behind (nullptr if none). Pipelining: a worker serves one
  // connection's requests in order, so the request it reads right after ending the running one needs no round
  // trip through our loop; without it every worker idles between two requests until we have read its
  // FCGI_END_REQUEST and sent the next (issue 12: 0.86x nginx fastcgi_pass, whose requests wait in the shared
  // socket's backlog). Only a request that is sent whole at once (no body, or a complete one of at most
  // kFcgiPipelineMaxBodyBytes), to a worker of the current handler version that may serve one more request.
  [[nodiscard]] FastCgiSlot* pipeline_slot(const FastCgiExchange& ex);
  void pipeline(FastCgiSlot& slot, FastCgiExchange& ex);
  // The slot's running request is no longer wanted (its exchange went away): FCGI_ABORT_REQUEST once the records at
  // hand are handled, and the worker is stopped if no FCGI_END_REQUEST follows within the handler timeout.
  void abort_running(FastCgiSlot& slot);
  // The pipelined request behind the slot's running one leaves the slot (the connection is being dropped, or the
  // running request ended unclean): it runs again on another connection if it cannot have started (`is_unstarted`)
  // or is idempotent, else it gets 502.
  void release_next(FastCgiSlot& slot, bool is_unstarted);
  // Opens a connection for `slot`: no error, or the errno of the failure (ECONNREFUSED/ENOENT: nobody listens
  // there; EAGAIN: a unix socket's backlog is full), logged.
  [[nodiscard]] std::error_code connect(FastCgiSlot& slot);
  void watch(FastCgiSlot& slot);
  void on_io(FastCgiSlot& slot, std::uint32_t events);
  void flush(FastCgiSlot& slot);
  // Reads what the application sent and handles its records, until the socket is drained (a short read), paused or
  // closed. `is_eof_needed`: for a caller that acts right after, without going back to the loop (a worker's exit, an
  // abort): reads on until EAGAIN or EOF, so that an EOF already queued is seen.
  void on_readable(FastCgiSlot& slot, bool is_eof_needed = false);
  // Handles the records buffered in the slot's reader; false if reading must stop (dropped or paused).
  bool process_records(FastCgiSlot& slot);
  // Handles one record; false if the connection was dropped.
  bool on_record(FastCgiSlot& slot, const fcgi::Record& record);
  void on_end_request(FastCgiSlot& slot, fcgi::ProtocolStatus status);
  void log_stderr(FastCgiSlot& slot, std::string_view bytes, bool flush_partial);
  // Closes the connection; its exchange (if any) ends with 502, or is retried on another connection when that is
  // safe. With `kill_worker` a managed worker is stopped too (it is hung, speaks garbage, or closed its connection).
  void drop(FastCgiSlot& slot, const char* why, bool kill_worker);
  // Stops the slot's worker on purpose (supervisor.h's recycle rule): it is restarted at once when it has exited.
  void recycle(FastCgiSlot& slot);
  // External, after FCGI_END_REQUEST on `slot`: whether to keep its connection open for the next request (see
  // fastcgi_gateway.h, "Connections"), else it is closed.
  [[nodiscard]] bool should_keep(const FastCgiSlot& slot) const;
  // Managed: the slot's worker (not started): a listening socket of its own and the handler on it.
  std::unique_ptr<SupervisedProcess> make_worker(FastCgiSlot& slot);

  EventLoop& loop_;
  FastCgiConfig config_;
  FastCgiGateway* gw_;  // managed: the gateway whose workers these are; external: null
  std::size_t id_;  // names the workers' sockets
  std::string name_;
  std::string program_;  // managed: the executable; empty: external
  std::unique_ptr<Supervisor> supervisor_;  // managed: the workers' back-off and handler version (before slots_)
  std::vector<std::unique_ptr<FastCgiSlot>> slots_;
  Admission admission_;  // requests waiting for a free connection
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
    fcgi::append_begin_request(preamble_, kFcgiRequestId, fcgi::Role::Responder,
                               app.keeps_connections() ? fcgi::kKeepConn : std::uint8_t{0});
    // Managed workers get the whole environment a CGI child would (PATH, --pass-env, SPAWND_DB, ...) before the
    // request's meta-variables; an external application keeps its own (its base_env is empty).
    std::string params = gw.base_params_;
    const ScriptServerInfo server{.document_root = gw.config_.document_root,
                                  .pass_authorization = gw.config_.pass_authorization};
    for (const auto& [name, value] : script_meta_variables(request, target_, server))
      fcgi::append_name_value(params, name, value);
    fcgi::append_stream(preamble_, fcgi::RecordType::Params, kFcgiRequestId, params);
    fcgi::append_stream_end(preamble_, fcgi::RecordType::Params, kFcgiRequestId);
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

  // Whether fill() would move the whole request at once: no body, or a complete one of at most `max_body_bytes`.
  [[nodiscard]] bool can_send_whole(std::size_t max_body_bytes) const {
    return !is_preamble_sent_ && replay_.empty() &&
           (!has_body_ || (body_.is_complete() && body_.available().size() <= max_body_bytes));
  }
  // Pipelined: `bytes` is the whole request as sent (fill()'s output). Kept until started(), so that the request can
  // go out again on another connection (rewind()) although its body bytes are consumed.
  void keep_for_replay(std::string bytes) { replay_ = std::move(bytes); }
  // The worker has it: the copy is not needed any more.
  void started() { replay_ = std::string(); }
  // It never reached a worker: fill() sends the kept copy again.
  void rewind() { is_replay_pending_ = true; }

  // Moves the request (first the preamble, then body bytes as STDIN records) into `out`, keeping at most
  // kFcgiMaxUnsentBytes unsent. Called whenever the connection drained or body bytes arrived.
  void fill(std::string& out, std::size_t unsent) {
    if (is_replay_pending_) {
      is_replay_pending_ = false;
      out += replay_;
      return;
    }
    if (!is_preamble_sent_) {
      out += preamble_;
      unsent += preamble_.size();
      is_preamble_sent_ = true;
      if (!has_body_) {
        fcgi::append_stream_end(out, fcgi::RecordType::Stdin, kFcgiRequestId);
        is_stdin_done_ = true;
        return;
      }
    }
    while (!is_stdin_done_ && unsent < kFcgiMaxUnsentBytes) {
      std::string_view avail = body_.available();
      if (avail.empty()) break;
      avail = avail.substr(0, std::min(avail.size(), kFcgiMaxUnsentBytes - unsent));
      fcgi::append_stream(out, fcgi::RecordType::Stdin, kFcgiRequestId, avail);
      unsent += avail.size();
      body_.consume(avail.size());
    }
    if (!is_stdin_done_ && body_.is_complete() && body_.available().empty()) {
      fcgi::append_stream_end(out, fcgi::RecordType::Stdin, kFcgiRequestId);
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
        SPAWND_LOG_ERROR("fastcgi[%llu] %s: %s", fcgi_ull(request_id_), app_.name().c_str(), relay_.error().c_str());
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
                       fcgi_ull(request_id_), app_.name().c_str(), static_cast<unsigned>(status));
      finish(status == fcgi::ProtocolStatus::Overloaded ? GatewayError::ServiceUnavailable : GatewayError::BadGateway);
      return;
    }
    if (relay_.end() == CgiOutputRelay::Step::BadGateway) {
      SPAWND_LOG_ERROR("fastcgi[%llu] %s: %s", fcgi_ull(request_id_), app_.name().c_str(), relay_.error().c_str());
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
  [[nodiscard]] bool has_output() const noexcept { return has_output_; }
  [[nodiscard]] bool is_idempotent() const noexcept { return is_idempotent_; }

  FastCgiSlot* slot = nullptr;  // the connection serving this request, while it does

 private:
  void on_timeout() {
    if (app_.admission().expire(*this, gw_.config_.timeout_ms)) {
      finish(GatewayError::ServiceUnavailable);
      return;
    }
    // Waiting on the client (its body still arriving, or it reads our response slowly) is not the application's
    // fault: abort the request, keep the worker. Otherwise the worker is hung: stop and replace it.
    const bool is_connecting = slot != nullptr && slot->state == FastCgiSlot::State::Connecting;
    const bool is_waiting_on_client = slot != nullptr && !is_connecting && (slot->is_paused || !is_stdin_done_);
    // Nothing at all from the application: it most likely never accepted the connection (every one of its processes
    // busy, e.g. each holding a kept-open connection of someone else) rather than being slow to answer.
    const char* why = is_waiting_on_client ? " (the client is slow)"
                      : is_connecting      ? " (the application did not accept the connection)"
                      : !has_output_ ? " (nothing received from the application: it did not accept the request, or "
                                       "all its processes are busy)"
                                     : "";
    SPAWND_LOG_ERROR("fastcgi[%llu] %s: no complete response within %lld ms%s", fcgi_ull(request_id_), app_.name().c_str(),
                     static_cast<long long>(gw_.config_.timeout_ms), why);
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
  std::string replay_;    // pipelined and not started yet: the whole request as sent (keep_for_replay())
  bool is_replay_pending_ = false;  // rewound: fill() sends replay_ again
  bool has_body_;
  bool is_idempotent_;
  EventLoop::TimerId timer_ = 0;
  bool is_preamble_sent_ = false;
  bool is_stdin_done_ = false;
  bool has_output_ = false;
  bool is_finished_ = false;
  bool is_retried_ = false;
};

}  // namespace spawnd::server
