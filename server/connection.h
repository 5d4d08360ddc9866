// server/connection.h — one client connection: reads requests, has them routed, writes responses, in order.
//
// A Connection owns its socket, its llhttp-based RequestParser, its input and output buffers, and at most one
// Exchange (a dynamic request in flight). Requests on one connection are handled one at a time: a pipelined request
// is parsed only once the previous response has been written (RFC 9112 §9.3.2 requires answering in order). It is a
// state machine (State below); the request being answered lives in one RequestState, reset by assignment for the
// next request. Each request runs on the sites (site.h) that were current when its head was complete, and on the site
// its Host names; the site's Router (router.h) says who answers the request, and re-routes a CGI local redirect; the
// ResponseWriter (response_writer.h) frames the response; the connection moves the bytes and keeps the time.
//
// A request's message body is read whole before the handler starts (request buffering, request_body_buffer.h), unless
// --request-buffering is off: then it streams to the running exchange, and reading pauses at a high-water mark.
//
// Lifetime: owned by Server. close() unregisters the socket at once and asks the server to destroy the object after
// the current dispatch pass, so a Connection is never destroyed inside one of its own callbacks. Work deferred to
// after the pass holds a weak reference to the connection's liveness token (defer()) and is skipped once the
// connection is gone. An exchange that ends is retired: kept by the connection (it may still be on the stack of its
// own callback) and destroyed after the pass, at the next request, or by ~Connection before any other member,
// whichever comes first. So an exchange never outlives its sink, its body or its Request, whatever order deferred
// tasks run in (gateway.h promises it). Loop thread only.
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
#include "server/output_buffer.h"
#include "server/request_body_buffer.h"
#include "server/response_writer.h"
#include "server/router.h"
#include "server/site.h"

namespace spawnd::server {

class Server;
class TlsContexts;
class TlsStream;

class Connection final : public ResponseSink, public RequestBody {
 public:
  // Where the connection is in the life of a request. The state changes only in advance(), and only along these
  // transitions (is_transition_allowed() checks them; any state but Closed may also go to Closed through close()):
  //
  //   from                                      to             when
  //   Accepted                                  Idle           start(): the socket is registered with the loop
  //   Finished                                  Idle           next_request(): req_ = {} forgets the last request
  //   Idle                                      ReadingHead    the first bytes of a request head arrived
  //   Idle, ReadingHead                         BufferingBody  the head is routed to a gateway that gets the whole body
  //   Idle, ReadingHead, BufferingBody          Responding     an exchange starts (the body is whole, or it streams)
  //   Idle, ReadingHead, BufferingBody,         Sending        the whole response is queued: a static file, an error
  //     Responding                                             response, or the exchange's on_end()
  //   Sending                                   Finished       written, request read whole, keep-alive
  //   Sending                                   Lingering      written, but the connection must close and request
  //                                                            bytes are still unread
  //
  // A local redirect (RFC 3875 §6.2.2) stays in Responding when its new route is a gateway, and goes to Sending when
  // it is the static files. The request being answered (RequestState) exists from the head on (or from the error
  // response made for a head that could not be parsed) until Finished goes to Idle.
  enum class State {
    Accepted,       // constructed; not yet registered with the loop
    Idle,           // no byte of the next request yet. Timer: header timeout (new connection), keep-alive timeout
    ReadingHead,    // part of a request head received. Timer: header timeout
    BufferingBody,  // reading the whole request body before the exchange starts (request_body_buffer.h). Timer: I/O
    Responding,     // an exchange produces the response; it may stream the request body. Timer: I/O, client side only
    Sending,        // the whole response is queued in the output; what is left of the request body is discarded
    Finished,       // response written, request read whole: the next request is parsed after this dispatch pass
    Lingering,      // write side shut after the last response; input is read and dropped until EOF or kLingerMs
                    // (nginx's lingering close: the client sees the response rather than a reset)
    Closed,         // socket closed; the Server destroys the object after this dispatch pass
  };
  [[nodiscard]] static bool is_transition_allowed(State from, State to) noexcept;

  // `tls`: the certificates of the TLS listener the socket came from (the connection speaks TLS); null: plain HTTP.
  Connection(Server& server, Fd socket, std::uint64_t id, const sockaddr_storage& peer,
             std::shared_ptr<const TlsContexts> tls = nullptr);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() override;

  // Registers the socket with the loop (and, over TLS, makes the connection's TLS state: the handshake runs within
  // the first reads, under the header timeout). Returns false if that fails (the caller drops the connection).
  [[nodiscard]] bool start();
  // Closes the connection now (no more bytes are sent). Idempotent.
  void close();
  // Graceful shutdown began: idle connections close now, busy ones after their current response.
  void on_shutdown();
  [[nodiscard]] bool is_idle() const noexcept;
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] State state() const noexcept { return state_; }

  // ResponseSink
  void on_head(ResponseHead head) override;
  [[nodiscard]] Io on_body(std::string_view bytes) override;
  void on_end(std::optional<GatewayError> error) override;
  [[nodiscard]] Io on_raw(std::string_view bytes) override;
  void on_local_redirect(std::string location) override;
  void on_error_status(int status) override;

  // RequestBody
  [[nodiscard]] std::string_view available() const override;
  void consume(std::size_t n) override;
  [[nodiscard]] bool is_complete() const override;

 private:
  // Everything about the request being answered. Reset by assignment (req_ = {}) when the next request begins
  // (next_request()), so nothing of one request can leak into the next. Exchanges reference `request`: they are
  // retired and destroyed before the reset.
  struct RequestState {
    std::optional<Request> request;      // the head; made up by send_error() for a head that could not be parsed
    // The configuration the request runs on, taken when its head is complete (a reload does not change it under
    // the request), and its site (Sites::select). Null for a head that could not be parsed.
    std::shared_ptr<Sites> sites;
    Site* site = nullptr;
    Gateway* buffering_for = nullptr;    // BufferingBody: the gateway that starts once the body is whole
    bool is_keep_alive = true;           // reuse the connection after this response
    bool has_continued = false;          // "100 Continue" sent
    bool is_discarding_body = false;     // the answer does not need (the rest of) the body: drop it as it arrives
    int local_redirects = 0;             // CGI local redirects followed (Router::kMaxLocalRedirects)
    ResponseWriter response;             // the framing of the response, and its status and size for the access log
    std::uint64_t response_start = 0;    // out_'s position of the response's head: once sent, too late for an error
    bool is_exchange_paused = false;     // on_body() returned Io::Again; resume() once the output drains
    bool is_spool_failed = false;        // a temporary file for the response could not be had or written (logged)
    bool is_logged = false;              // the access log has the request
    ServedBy served_by = ServedBy::None;  // what answers it, for the status page's counters (metrics.h)
    std::int64_t start_ns = 0;           // monotonic_ns() at the end of the head (or at the error, without one)
  };

  // Response bytes buffered before the exchange is asked to pause (Io::Again); it resumes below half of it.
  // Past it, the rest of a handler's response is spooled to a temporary file instead (spool_output()).
  static constexpr std::size_t kOutHighWaterBytes = 256 * 1024;

  // The one place the state changes: checks the transition (is_transition_allowed) and runs the new state's entry
  // action (its timer; for Lingering the half-close; for Closed the teardown).
  void advance(State next);
  // Runs `step` after the current dispatch pass, unless the connection is destroyed by then. The one way Connection
  // defers work: the task holds a weak reference to alive_, which dies with the connection.
  void defer(void (Connection::*step)());

  void on_io(std::uint32_t events);
  void on_readable();
  // Reads from the client: the socket's bytes, or over TLS the decrypted ones. As read(2): > 0 bytes, 0 at EOF, -1
  // with errno (EAGAIN: nothing more for now).
  [[nodiscard]] ssize_t receive(char* buf, std::size_t capacity);
  void on_writable();
  void on_timeout();
  [[nodiscard]] bool is_waiting_on_client() const noexcept;
  void process_input();
  void process_input_and_update();
  void on_request_head();
  void dispatch(Route route);
  void start_exchange(Gateway& gateway);
  [[nodiscard]] bool take_decoded_body();
  void after_body_progress();
  void retire_exchange();
  void drop_retired_exchanges();
  void end_exchange();
  void send_static();
  // An error response of our own (a custom page if there is one); `allow`: a 405's Allow field (RFC 9110 §15.5.6);
  // `text`: a text/plain body that says more than the status (instead of the page).
  void send_error(int status, bool must_close, std::string_view allow = {}, std::string_view text = {});
  // A plain HTTP request came to the TLS listener (TlsStream::is_plain_http_request): the connection drops its TLS
  // layer and answers 400 in plain HTTP saying so, then closes (lingering, so that the unread rest of the request
  // does not turn the close into a reset before the client reads the answer), as nginx does.
  void answer_plain_http_on_tls_port();
  // Answers the status page (--status-path): 200 with the metrics, 403 for a client --status-allow excludes, 405
  // for a method other than GET and HEAD.
  void send_status();
  // "OPTIONS *" (RFC 9110 §9.3.7, RFC 9112 §3.2.4): 200 with the methods the request's site serves in Allow and no
  // body, as Apache and lighttpd answer it.
  void send_server_options();
  // --redirect-https on the plain listener: 308 to the request's URL on https:// (RFC 9110 §15.4.9).
  void send_redirect_https();
  void write_head(const ResponseHead& head);
  // The field line every response of this connection carries besides its own, for ResponseWriter's `extra_fields`:
  // with --hsts over TLS "Strict-Transport-Security: max-age=N\r\n" (RFC 6797 §7.1), else empty. The one place it
  // is made, for the heads built per response and for a cached static file's pre-encoded one alike.
  [[nodiscard]] std::string hsts_field() const;
  void send_queued_response();
  [[nodiscard]] Io flush();
  [[nodiscard]] Io after_gateway_output();
  void spool_output();
  void schedule_flush();
  void run_scheduled_flush();
  void on_response_written();
  void next_request();
  void update_interest();
  void arm_timer(std::int64_t timeout_ms);
  void start_lingering_close();

  Server& server_;
  EventLoop& loop_;
  EventLoop::WatchedFd socket_;  // leaves the loop and closes together
  std::uint64_t id_;
  std::string remote_addr_;
  std::uint16_t remote_port_ = 0;
  std::string local_addr_;
  std::uint16_t local_port_ = 0;
  State state_ = State::Accepted;
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);  // see defer()

  RequestParser parser_;
  std::string in_;           // bytes read and not yet parsed
  std::size_t in_pos_ = 0;   // parsed prefix of in_
  std::string decoded_;      // body bytes the parser just decoded, on their way into body_
  RequestBodyBuffer body_;   // decoded request body bytes not yet consumed by the exchange (cleared per request)
  RequestState req_;

  OutputBuffer out_;  // response bytes (and a static file) not yet sent

  // HTTPS: the certificates (until start() makes tls_ from them) and the connection's TLS layer; null tls_: plain.
  std::shared_ptr<const TlsContexts> tls_contexts_;
  std::unique_ptr<TlsStream> tls_;
  bool is_read_waiting_writable_ = false;  // a TLS read (the handshake) waits for EPOLLOUT
  bool is_write_waiting_readable_ = false;  // a TLS write waits for EPOLLIN

  bool is_flush_scheduled_ = false;
  bool is_read_paused_ = false;
  bool is_read_eof_ = false;  // the client half-closed after its request: finish the static response, then close
  bool is_shutting_down_ = false;
  std::uint32_t interest_ = 0;
  EventLoop::TimerId timer_ = 0;
  std::int64_t last_activity_ms_ = 0;

  // Last, so that even the implicit destruction order is right: exchanges reference req_.request, body_ and *this.
  std::unique_ptr<Exchange> exchange_;  // the dynamic exchange of req_.request, if any
  std::vector<std::unique_ptr<Exchange>> retired_exchanges_;  // ended or cancelled; destroyed after this pass
};

}  // namespace spawnd::server
