// server/connection.h — one client connection: reads requests, routes them, writes responses, in order.
//
// A Connection owns its socket, its llhttp-based RequestParser, its input and output buffers, and at most one
// Exchange (a dynamic request in flight). Requests on one connection are handled one at a time: a pipelined request
// is parsed only once the previous response has been written (RFC 9112 §9.3.2 requires answering in order).
//
// A request's message body is read whole before the handler starts (request buffering, request_body_buffer.h), unless
// --request-buffering is off: then it streams to the running exchange, and reading pauses at a high-water mark.
//
// Lifetime: owned by Server. close() unregisters the socket at once and asks the server to destroy the object after
// the current dispatch pass, so a Connection is never destroyed inside one of its own callbacks. An exchange that
// ends is retired: kept by the connection (it may still be on the stack of its own callback) and destroyed after
// the pass, or by ~Connection before any other member, whichever comes first. So an exchange never outlives its
// sink, its body or its Request, whatever order deferred tasks run in (gateway.h promises it). Loop thread only.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "server/event_loop.h"
#include "server/gateway/gateway.h"
#include "server/http_parser.h"
#include "server/http_request.h"
#include "server/request_body_buffer.h"

namespace spawnd::server {

class Server;

class Connection final : public ResponseSink, public RequestBody {
 public:
  enum class State {
    ReadingRequest,   // waiting for (the rest of) a request head
    AwaitingGateway,  // a request is being answered (static response queued, or an exchange running)
    KeepAlive,        // idle between two requests
    Closing,          // closed; waiting to be destroyed
  };

  Connection(Server& server, Fd socket, std::uint64_t id, const sockaddr_storage& peer);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() override;

  // Registers the socket with the loop. Returns false if that fails (the caller drops the connection).
  [[nodiscard]] bool start();
  // Closes the connection now (no more bytes are sent). Idempotent.
  void close();
  // Graceful shutdown began: idle connections close now, busy ones after their current response.
  void on_shutdown();
  [[nodiscard]] bool is_idle() const noexcept;
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  // Parses the next pipelined request, if any (scheduled through the loop after a response is written).
  void next_request();
  void process_input_and_update();

  // ResponseSink
  void on_head(ResponseHead head) override;
  [[nodiscard]] Io on_body(std::string_view bytes) override;
  void on_end(std::optional<GatewayError> error) override;
  [[nodiscard]] Io on_raw(std::string_view bytes) override;
  void on_local_redirect(std::string location) override;

  // RequestBody
  [[nodiscard]] std::string_view available() const override;
  void consume(std::size_t n) override;
  [[nodiscard]] bool is_complete() const override;

 private:
  void on_io(std::uint32_t events);
  void on_readable();
  void on_writable();
  void on_timeout();
  void process_input();
  void on_request_head();
  void dispatch();
  void start_exchange(Gateway& gateway);
  [[nodiscard]] bool take_decoded_body();
  void retire_exchange();
  void end_exchange();
  void after_body_progress();
  void send_static();
  void send_error(int status, bool must_close, const char* extra_field = nullptr);
  void begin_response(int status, const std::string& reason,
                      const std::vector<std::pair<std::string, std::string>>& fields,
                      std::optional<std::uint64_t> content_length);
  void append_body(std::string_view bytes);
  [[nodiscard]] Io flush();
  [[nodiscard]] Io after_gateway_output();
  void schedule_flush();
  void on_response_written();
  void update_interest();
  void arm_timer(std::int64_t timeout_ms);
  void start_lingering_close();
  [[nodiscard]] std::size_t pending_output() const noexcept { return out_.size() - out_pos_; }

  Server& server_;
  EventLoop& loop_;
  Fd socket_;
  std::uint64_t id_;
  std::string remote_addr_;
  std::uint16_t remote_port_ = 0;
  std::string local_addr_;
  std::uint16_t local_port_ = 0;
  State state_ = State::ReadingRequest;

  RequestParser parser_;
  std::string in_;           // bytes read and not yet parsed
  std::size_t in_pos_ = 0;   // parsed prefix of in_
  std::string decoded_;      // body bytes the parser just decoded, on their way into body_
  RequestBodyBuffer body_;   // decoded request body bytes not yet consumed by the exchange
  bool is_discarding_body_ = false;  // the answer does not need the body: drop it as it arrives
  bool is_buffering_body_ = false;   // reading the whole body before starting pending_gateway_
  Gateway* pending_gateway_ = nullptr;

  std::optional<Request> request_;      // the request being answered
  bool has_continued_ = false;          // "100 Continue" sent for this request
  bool is_keep_alive_ = true;           // reuse the connection after this response
  bool is_head_request_ = false;
  int local_redirects_ = 0;  // CGI local redirects followed for this request

  // Response state.
  std::string out_;
  std::size_t out_pos_ = 0;
  std::size_t response_out_start_ = 0;  // where this response's head begins in out_
  bool is_head_on_wire_ = false;        // some of this response's head has been sent (too late for an error status)
  Fd file_;  // static body sent with sendfile after out_
  std::uint64_t file_offset_ = 0;
  std::uint64_t file_remaining_ = 0;
  int status_ = 0;
  bool is_head_sent_ = false;
  bool is_chunked_out_ = false;
  bool is_body_suppressed_ = false;  // HEAD, 204, 304: fields describe a body that is not sent
  bool is_response_complete_ = false;
  bool is_exchange_paused_ = false;
  bool is_raw_ = false;  // NPH: bytes pass through unframed
  bool is_logged_ = false;
  bool is_awaiting_next_ = false;  // next_request() is scheduled
  std::uint64_t body_bytes_sent_ = 0;

  bool is_flush_scheduled_ = false;
  bool is_read_paused_ = false;
  bool is_read_eof_ = false;  // the client half-closed after its request: finish the static response, then close
  bool is_lingering_ = false;
  bool is_shutting_down_ = false;
  std::uint32_t interest_ = 0;
  EventLoop::TimerId timer_ = 0;
  std::int64_t last_activity_ms_ = 0;
  std::int64_t timeout_ms_ = 0;

  // Last, so that even the implicit destruction order is right: exchanges reference request_, body_ and *this.
  std::unique_ptr<Exchange> exchange_;  // the dynamic exchange of request_, if any
  std::vector<std::unique_ptr<Exchange>> retired_exchanges_;  // ended or cancelled; destroyed after this pass
};

}  // namespace spawnd::server
