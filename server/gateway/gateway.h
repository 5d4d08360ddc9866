// server/gateway/gateway.h — the one interface every dynamic mode implements (CGI, fork server, FastCGI, in-process).
//
// A Gateway turns a Request into a running Exchange. The exchange reads the request body from a RequestBody and
// reports the response to a ResponseSink; both are implemented by Connection, which never learns which mode it
// talks to. Everything runs on the EventLoop thread and nothing here blocks.
//
// The relay of a handler's CGI-format output to these calls is cgi_relay.h, the same for every mode.
//
// Lifetime: the Connection owns the Exchange. Destroying the exchange cancels it (idempotent, like h2o's
// close_generator): a CGI child is signalled, but stays in the ChildTable until reaped, and an exchange still
// waiting in a gateway's queue leaves it. After on_end() the exchange makes no more calls into the sink or the body.
// An exchange is always destroyed before its sink, its body and its Request: the Connection that is all three
// destroys its exchanges first (connection.h), so a gateway may keep raw pointers to its queued exchanges and use
// them until their destructors run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "server/http_request.h"

namespace spawnd::server {

// A response head as a gateway produces it (status line and fields; the connection adds Date, Server, Connection
// and the framing: Content-Length or chunked transfer coding).
struct ResponseHead {
  int status = 200;
  std::string reason;  // empty: the standard reason phrase for `status`
  std::vector<std::pair<std::string, std::string>> fields;
  std::optional<std::uint64_t> content_length;  // known body length in bytes, or nullopt for a streamed body
};

// Why an exchange ended without a complete response. Before the head was sent, the connection answers with the
// matching status; after it, the connection is aborted (h2o's errorclose).
enum class GatewayError {
  BadGateway,          // 502: the handler's output was not a valid response, or it died before answering
  GatewayTimeout,      // 504: the handler did not answer within its timeout
  ServiceUnavailable,  // 503: over capacity (sent with Retry-After)
  Internal,            // 500: spawning failed for a reason that is ours
};

// What answers a request: the `mode` label of the status page (metrics.h). None: a request answered before it was
// routed (a head that did not parse, a header timeout); Status: the status page itself.
enum class ServedBy : std::uint8_t { None, Static, Status, Cgi, Fork, FastCgi, FastCgiPass, InProc };
inline constexpr std::size_t kServedByCount = 8;
// The label value of `served_by`: "none", "static", "status", "cgi", "fork", "fastcgi", "fastcgi-pass", "inproc".
[[nodiscard]] std::string_view served_by_name(ServedBy served_by) noexcept;

// What a gateway reports to the status page, read when it is scraped (loop thread).
struct GatewayLoad {
  std::size_t running = 0;           // requests being handled: CGI/fork children alive (slots of --max-children),
                                     // FastCGI connections in use, in-process workers busy
  std::size_t queued = 0;            // requests waiting for one of those (admission.h), or sent to a FastCGI
                                     // worker behind the request it is running (pipelined)
  std::uint64_t queue_full = 0;      // requests refused with 503 because the queue was full, since start-up
  std::uint64_t queue_timeout = 0;   // requests answered 503 because they waited in the queue past --handler-timeout
  std::uint64_t spawn_failures = 0;  // handler processes that could not be started: a CGI or fork child for a request
                                     // (500 or 503), a fork server, a FastCGI worker
};
// Receives one gateway's figures (a gateway with a fallback reports both, each under its own mode).
using LoadReport = std::function<void(ServedBy mode, const GatewayLoad& load)>;

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // Exactly once, before any body bytes.
  virtual void on_head(ResponseHead head) = 0;
  // Body bytes. Returns Io::Done if the sink took them and can take more, Io::Again if it took them but its buffer is
  // full: the exchange must stop producing until Exchange::resume() is called.
  [[nodiscard]] virtual Io on_body(std::string_view bytes) = 0;
  // Exactly once, last. nullopt: the response is complete. An error before on_head() → an error response;
  // after on_head() → the connection is closed without completing the response.
  virtual void on_end(std::optional<GatewayError> error) = 0;
  // Instead of on_head/on_body/on_end: a CGI local redirect (RFC 3875 §6.2.2). The server serves `location` (a
  // path with optional query) itself as a new GET without a body (the Router re-routes it). This is the exchange's
  // last call.
  virtual void on_local_redirect(std::string location) = 0;
  // For NPH scripts (RFC 3875 §5): raw HTTP response bytes written to the client as they are; replaces on_head()
  // and on_body() for the whole exchange. Returns as on_body().
  [[nodiscard]] virtual Io on_raw(std::string_view bytes) = 0;
  // Instead of a response: the server answers with an error response of its own making, `status` (403 or 404 for a
  // script that does not exist or may not run), as it answers its other errors (custom error pages,
  // error_pages.h). The exchange's last call. This default sends the built-in page through on_head(), on_body() and
  // on_end().
  virtual void on_error_status(int status);
};

// The request body as it arrives from the client (chunked coding already removed).
class RequestBody {
 public:
  virtual ~RequestBody() = default;
  // Body bytes received and not yet consumed.
  [[nodiscard]] virtual std::string_view available() const = 0;
  // Marks the first `n` bytes of available() as used; may let the connection read more from the client.
  virtual void consume(std::size_t n) = 0;
  // True once the whole body has been received (available() may still hold some of it).
  [[nodiscard]] virtual bool is_complete() const = 0;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  // The sink can take more body bytes again after on_body() returned Io::Again (h2o's generator->proceed).
  virtual void resume() = 0;
  // New bytes are in RequestBody::available(), or the body just completed.
  virtual void on_request_body() = 0;
};

class Gateway {
 public:
  virtual ~Gateway() = default;
  // Starts serving `request` (its path starts with the prefix this gateway is mounted at). Never blocks. The sink
  // and body outlive the returned exchange. May answer completely before returning (404 for an unknown script, 503
  // when over capacity); it then returns nullptr.
  [[nodiscard]] virtual std::unique_ptr<Exchange> start(const Request& request, ResponseSink& sink,
                                                        RequestBody& body) = 0;
  // Which mode answers this gateway's requests (the status page's `mode` label). A request this gateway hands to its
  // fallback (a program that is no SDK handler under --mode fastcgi or inproc) is counted under the mount's mode.
  [[nodiscard]] virtual ServedBy served_by() const noexcept = 0;
  // Reports the gateway's load (running, queued, refusals) to `report`; a gateway with a fallback reports it too.
  // The default reports nothing (a gateway without processes or a queue).
  virtual void report_load(const LoadReport& report) const { (void)report; }
};

}  // namespace spawnd::server
