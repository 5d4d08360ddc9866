// server/gateway/cgi_relay.h — the one relay of a handler's CGI-format output to the client, for every mode: a CGI
// child's stdout (cgi, fork), a FastCGI application's FCGI_STDOUT (fastcgi, --fastcgi-pass) and an in-process
// handler's output buffer (inproc).
//
// CgiOutputRelay turns the byte stream into ResponseSink calls (gateway.h). A document or client-redirect response
// (RFC 3875 §6.2.1, §6.2.3, §6.2.4): its header block is parsed with CgiResponseParser (common/cgi_response.h) and
// sent as on_head(); the body follows through on_body(), never more than the Content-Length the handler announced
// (for a HEAD request that field announces a body that does not follow, RFC 9110 §9.3.2, so nothing is capped). A
// local redirect (RFC 3875 §6.2.2): on_local_redirect() and nothing else. An NPH script (RFC 3875 §5): its output
// goes through on_raw() as it is, once its first line is known to be a status-line with a final status.
//
// The relay never calls on_end(): the exchange does, after its own clean-up, from what feed() and end() return.
// Every outcome that is a 502 comes with error(), one line for the exchange's log entry.
//
// StderrLines splits a handler's stderr (a CGI child's fd 2, FCGI_STDERR) into lines for the error log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/cgi_response.h"
#include "server/gateway/gateway.h"

namespace spawnd::server {

class CgiOutputRelay {
 public:
  enum class Step {
    More,        // keep feeding output
    Paused,      // the sink took the bytes but is full: stop reading until Exchange::resume()
    Complete,    // the response is complete: the whole announced body was relayed, or a local redirect was handed on.
                 // Later output is ignored. The exchange ends cleanly (on_end(nullopt); none after a redirect).
    BadGateway,  // not a valid response (error() says why): the exchange ends with 502, or aborts after the head
    SinkClosed,  // the sink refused the bytes (Io::Error): the connection is closing and destroys the exchange
  };

  // `max_header_bytes`: the limit of the header block (and of an NPH script's status-line). `is_head_request`: the
  // request's method is HEAD. `is_nph`: the handler is a non-parsed-header script (CGI mode's "nph-" names).
  CgiOutputRelay(ResponseSink& sink, std::size_t max_header_bytes, bool is_head_request, bool is_nph = false);

  // Relays the next `bytes` of the handler's output. Only the header block is copied (into the parser); body bytes
  // go to the sink as they are. After Complete, later output is ignored (Complete again); after BadGateway, the
  // relay stays failed.
  [[nodiscard]] Step feed(std::string_view bytes);
  // The handler's output ended (EOF on its stdout, FCGI_END_REQUEST, the in-process handler returned). Returns
  // Complete, or BadGateway (error() says why: no complete header block, or fewer body bytes than announced).
  [[nodiscard]] Step end();
  // feed(output) then end(), for output that is whole before the relay starts (an in-process handler's): a body
  // shorter than its Content-Length is found before the head is sent, so the client gets a 502 rather than a
  // response cut off. Returns Complete, BadGateway or SinkClosed.
  [[nodiscard]] Step relay_whole(std::string_view output);

  // The head (or the redirect, or an NPH status-line) went to the sink: an error now aborts the connection.
  [[nodiscard]] bool has_head() const noexcept { return has_head_; }
  [[nodiscard]] bool is_redirected() const noexcept { return is_redirected_; }
  // Why the last BadGateway: "bad response header: ...", "sent 3 of the 10 body bytes it announced", ...
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  enum class Phase { Head, Body, Raw, Done, Failed };

  Step feed_head(std::string_view bytes);
  Step feed_nph_head(std::string_view bytes);
  Step feed_body(std::string_view bytes);
  Step forward(Io io);
  Step fail(std::string why);

  ResponseSink& sink_;
  std::size_t max_header_bytes_;
  bool is_head_request_;
  bool is_nph_;
  Phase phase_ = Phase::Head;
  CgiResponseParser parser_;
  std::string nph_head_;  // an NPH script's output until its status-line is complete
  std::optional<std::uint64_t> announced_bytes_;  // the Content-Length to cap the body at
  std::uint64_t relayed_bytes_ = 0;
  bool is_whole_ = false;  // relay_whole(): all of the output is in the bytes being fed
  bool has_head_ = false;
  bool is_redirected_ = false;
  std::string error_;
};

// Splits a byte stream into lines (LF, with an optional CR before it) and hands each to `emit(std::string_view)`,
// without its end. A partial line longer than `max_line_bytes` is emitted as it is, so a handler that never writes a
// newline cannot make us buffer without bound.
class StderrLines {
 public:
  explicit StderrLines(std::size_t max_line_bytes = 4096) : max_line_bytes_(max_line_bytes) {}

  template <class Emit>
  void append(std::string_view bytes, Emit&& emit) {
    partial_.append(bytes);
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
      emit(without_cr(std::string_view(partial_).substr(start, nl - start)));
    partial_.erase(0, start);
    if (partial_.size() > max_line_bytes_) flush(emit);
  }
  // The stream ended: emits an unterminated last line, if any.
  template <class Emit>
  void flush(Emit&& emit) {
    if (partial_.empty()) return;
    emit(without_cr(partial_));
    partial_.clear();
  }

 private:
  static std::string_view without_cr(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  }

  std::size_t max_line_bytes_;
  std::string partial_;
};

}  // namespace spawnd::server
