// server/connection_response.cpp — the response side of Connection (connection.h): the end of exchanges, what a
// gateway's exchange calls (ResponseSink), and the sending of static and error responses. The state machine, the
// socket's events, the timers and the reading of requests are in connection.cpp.
#include "server/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/net_addr.h"
#include "server/server.h"
#include "server/static_files.h"
#include "server/tls.h"

namespace spawnd::server {

// ---- exchanges ----

// Destroying an exchange cancels it; never inside its own callback, so after this dispatch pass (or at the next
// request, or with the connection, if that goes first: ~Connection destroys retired exchanges before anything they
// reference).
void Connection::retire_exchange() {
  if (!exchange_) return;
  if (retired_exchanges_.empty()) defer(&Connection::drop_retired_exchanges);
  retired_exchanges_.push_back(std::move(exchange_));
}

void Connection::drop_retired_exchanges() { retired_exchanges_.clear(); }

// The exchange made its last call. Whatever of the body it did not read is dropped; keep-alive still needs it
// read off the socket.
void Connection::end_exchange() {
  retire_exchange();
  req_.is_exchange_paused = false;
  req_.is_discarding_body = true;
  body_.clear();
}

// ---- ResponseSink ----
//
// The sink takes calls only while Responding. An exchange retired in this dispatch pass (a request error, or close())
// is destroyed only after it and may still have an event to handle; what it says then must not reach a response that
// is complete already, or a closed socket.

void Connection::on_head(ResponseHead head) {
  if (state_ != State::Responding) return;
  write_head(head);
}

Io Connection::on_body(std::string_view bytes) {
  if (state_ != State::Responding) return Io::Error;
  req_.response.write_body(out_.tail(), bytes);
  return after_gateway_output();
}

Io Connection::on_raw(std::string_view bytes) {
  if (state_ != State::Responding) return Io::Error;
  // We cannot know how an NPH script framed its body: the close ends it.
  if (!req_.response.is_raw()) req_.is_keep_alive = false;
  req_.response.note_raw(bytes);
  out_.tail() += bytes;
  return after_gateway_output();
}

void Connection::on_end(std::optional<GatewayError> error) {
  if (state_ != State::Responding) return;
  end_exchange();
  ResponseWriter& response = req_.response;
  if (error) {
    if (response.is_head_written() && !out_.is_spooling() && out_.sent_position() <= req_.response_start &&
        !response.is_raw()) {
      // The head is still only in our buffer: take it back and answer the error instead.
      out_.truncate(req_.response_start);
      response.retract_head();
    }
    if (response.is_head_written()) {
      close();  // too late for an error status: abort so that the client sees an incomplete response
      return;
    }
    send_error(status_for(*error), false);
    return;
  }
  if (!response.is_head_written()) {
    send_error(502, false);
    return;
  }
  response.write_end(out_.tail());
  advance(State::Sending);
  schedule_flush();
}

// The gateway asks for an error response of ours (a script that does not exist): custom pages apply.
void Connection::on_error_status(int status) {
  if (state_ != State::Responding) return;
  end_exchange();
  send_error(status, false);
}

// RFC 3875 §6.2.2: the router rewrites the request as a GET of `location` without a body and routes it again.
void Connection::on_local_redirect(std::string location) {
  if (state_ != State::Responding) return;
  end_exchange();
  std::optional<Route> route = req_.site->router().route_local_redirect(*req_.request, location, req_.local_redirects);
  if (!route) {
    send_error(500, false);  // a redirect loop (the router logged it)
    return;
  }
  dispatch(*route);  // a HEAD request stays HEAD towards the client: req_.response suppresses the body
}

Io Connection::after_gateway_output() {
  schedule_flush();
  if (out_.memory_bytes() > kOutHighWaterBytes || out_.is_spooling()) spool_output();
  if (out_.memory_bytes() > kOutHighWaterBytes) {
    req_.is_exchange_paused = true;
    return Io::Again;
  }
  return Io::Done;
}

// The client reads more slowly than the handler writes: the rest of the response goes to a temporary file rather
// than making the handler wait (output_buffer.h), while --max-response-temp-bytes has room. When a file cannot be
// had or written, the handler waits for the client, as without spooling; the bytes are never lost.
void Connection::spool_output() {
  const Config& cfg = server_.config();
  if (!out_.is_spooling()) {
    if (cfg.max_response_temp_bytes == 0 || req_.is_spool_failed || out_.pending_file_bytes() > 0) return;
    Fd file = open_unlinked_temp_file(cfg.body_temp_dir);
    if (!file) {
      req_.is_spool_failed = true;
      SPAWND_LOG_WARN("request %llu: cannot spool the response to a temporary file in %s: %s; the handler waits for "
                      "the client", static_cast<unsigned long long>(req_.request->id), cfg.body_temp_dir.c_str(),
                      std::strerror(errno));
      return;
    }
    out_.begin_spool(std::move(file), server_.spool_budget());
  }
  if (out_.spill() == Io::Error && !req_.is_spool_failed) {
    req_.is_spool_failed = true;
    SPAWND_LOG_WARN("request %llu: writing the response's temporary file in %s: %s; the handler waits for the "
                    "client", static_cast<unsigned long long>(req_.request->id), cfg.body_temp_dir.c_str(),
                    std::strerror(errno));
  }
}

// Gateway output is sent once per loop turn, after the dispatch pass, so that a response whose head, body and end
// arrive in one read of the child's stdout leaves in one send().
void Connection::schedule_flush() {
  if (is_flush_scheduled_) return;
  is_flush_scheduled_ = true;
  defer(&Connection::run_scheduled_flush);
}

void Connection::run_scheduled_flush() {
  if (state_ == State::Closed) return;
  is_flush_scheduled_ = false;
  on_writable();
}

// ---- responses ----

// RFC 6797 §7.1: Strict-Transport-Security on responses over a secure transport only (a browser ignores it over
// plain HTTP anyway).
std::string Connection::hsts_field() const {
  const std::int64_t hsts = server_.config().hsts_seconds;
  return tls_ && hsts > 0 ? "Strict-Transport-Security: max-age=" + std::to_string(hsts) + "\r\n" : std::string();
}

void Connection::write_head(const ResponseHead& head) {
  req_.response_start = out_.end_position();
  // A handler that sends its own Strict-Transport-Security keeps it, alone.
  const bool has_own_hsts = std::any_of(head.fields.begin(), head.fields.end(), [](const auto& field) {
    return iequals(field.first, "Strict-Transport-Security");
  });
  req_.is_keep_alive = req_.response.write_head(out_.tail(), head, req_.is_keep_alive, server_.http_date(),
                                                has_own_hsts ? std::string() : hsts_field());
}

void Connection::send_static() {
  StaticResponse r = req_.site->static_files().serve(*req_.request);
  if (r.status >= 400 && !r.file) {
    // An error of the static files: the custom page, if there is one, with the other fields kept (Allow, Content-Range).
    if (const std::string* page = req_.site->error_pages().find(r.status)) {
      r.body = *page;
      for (auto& [name, value] : r.fields)
        if (name == "Content-Type") value = kErrorPageContentType;
    }
  }
  if (r.file) {
    if (r.encoded_fields.empty()) {
      write_head(ResponseHead{r.status, {}, std::move(r.fields), r.length});
    } else {  // a plain 200: the head encoded once per file (static_file_cache.h)
      req_.response_start = out_.end_position();
      req_.is_keep_alive = req_.response.write_encoded_head(out_.tail(), r.encoded_fields, req_.is_keep_alive,
                                                            server_.http_date(), hsts_field());
    }
    if (r.length > 0 && req_.response.count_body(r.length)) {
      if (r.file->is_in_memory) {  // a small file's snapshot: head and body leave in one send()
        out_.tail().append(r.file->content, r.offset, r.length);
      } else {
        out_.set_file(std::shared_ptr<const Fd>(r.file, &r.file->fd), r.offset, r.length);
      }
    }
  } else {
    write_head(ResponseHead{r.status, {}, std::move(r.fields),
                            r.status == 304 ? std::nullopt : std::optional<std::uint64_t>(r.body.size())});
    req_.response.write_body(out_.tail(), r.body);
  }
  send_queued_response();
}

// An error response of our own. Too late once a head was written: then the connection is aborted instead.
void Connection::send_error(int status, bool must_close, std::string_view allow, std::string_view text) {
  if (state_ == State::Closed) return;
  if (req_.response.is_head_written()) {
    close();
    return;
  }
  if (!req_.request) {
    // The head never parsed: answer as to an HTTP/1.1 request without a method (logged as "-").
    req_.request.emplace();
    req_.request->id = server_.next_request_id();
    req_.request->remote_addr = remote_addr_;
    req_.request->remote_port = remote_port_;
    req_.request->local_addr = local_addr_;
    req_.request->local_port = local_port_;
    if (tls_) req_.request->tls_protocol = tls_->protocol();
    req_.start_ns = monotonic_ns();
  }
  if (must_close) req_.is_keep_alive = false;
  req_.is_discarding_body = true;
  body_.clear();
  // The site's pages; before a head parsed (no site yet), the default site's.
  const std::string* custom =
      (req_.site ? req_.site->error_pages() : server_.sites()->default_site().error_pages()).find(status);
  const std::string page = !text.empty() ? std::string(text) : custom ? *custom : error_page(status);
  ResponseHead head = error_head(status, page.size());
  // error_head() puts Content-Type first.
  if (!text.empty()) {
    head.fields.front().second = "text/plain; charset=utf-8";
  } else if (custom) {
    head.fields.front().second = kErrorPageContentType;
  }
  if (!allow.empty()) head.fields.emplace_back("Allow", std::string(allow));
  write_head(head);
  req_.response.write_body(out_.tail(), page);
  send_queued_response();
}

void Connection::send_status() {
  req_.served_by = ServedBy::Status;
  const Request& r = *req_.request;
  if (!server_.status_allow().allows(r.remote_addr)) {
    send_error(403, false);
    return;
  }
  if (r.method != "GET" && r.method != "HEAD") {
    send_error(405, false, "GET, HEAD");
    return;
  }
  std::string body = server_.status_text();
  ResponseHead head;
  head.fields = {{"Content-Type", std::string(kStatusContentType)}, {"Cache-Control", "no-store"}};
  head.content_length = body.size();
  write_head(head);
  req_.response.write_body(out_.tail(), body);
  send_queued_response();
}

void Connection::send_server_options() {
  // The static files take GET and HEAD; a handler may take any method, so with one mounted the usual others too.
  ResponseHead head;
  head.fields = {{"Allow", req_.site->router().has_gateways() ? "OPTIONS, GET, HEAD, POST, PUT, DELETE, PATCH"
                                                              : "OPTIONS, GET, HEAD"}};
  head.content_length = 0;
  write_head(head);
  send_queued_response();
}

void Connection::send_redirect_https() {
  const Request& r = *req_.request;
  // The host the client asked for, without its port (request_host: lower-cased, an IPv6 literal in its brackets);
  // without a Host field (HTTP/1.0), the address the request came to.
  const std::string host = request_host(r);
  const std::string_view bare = host.empty() ? std::string_view(r.local_addr) : std::string_view(host);
  const std::uint16_t port = server_.tls_port();
  std::string location = "https://" + (port == 443 ? net::uri_host(bare) : net::join_host_port(bare, port));
  if (r.target.starts_with("/")) {
    location += r.target;
  } else {  // an absolute-form target (RFC 9112 §3.2.2): its path and query
    location += r.path.starts_with("/") ? r.path : "/";
    if (!r.query.empty()) location += "?" + r.query;
  }
  static constexpr std::string_view kBody = "Moved to HTTPS\n";
  ResponseHead head;
  head.status = 308;
  head.fields = {{"Location", std::move(location)}, {"Content-Type", "text/plain"}};
  head.content_length = kBody.size();
  write_head(head);
  req_.response.write_body(out_.tail(), kBody);
  send_queued_response();
}

// The whole response is in out_: send what the socket takes now, the rest on EPOLLOUT.
void Connection::send_queued_response() {
  advance(State::Sending);
  if (flush() == Io::Error) return;
  on_response_written();
  if (state_ != State::Closed) update_interest();
}

Io Connection::flush() {
  const Io io = out_.flush(socket_.get(), tls_.get());
  if (io == Io::Again && tls_) is_write_waiting_readable_ = tls_->wants_read();
  if (io == Io::Done || io == Io::Again) return io;
  // Io::Eof: the file shrank under us; the promised Content-Length cannot be met, so abort. Io::Error: EPIPE,
  // ECONNRESET: the client is gone.
  if (io == Io::Eof)
    SPAWND_LOG_WARN("request %llu: file shrank while being sent",
                    static_cast<unsigned long long>(req_.request ? req_.request->id : 0));
  close();
  return Io::Error;
}

void Connection::on_response_written() {
  if (state_ != State::Sending) return;
  if (!out_.is_empty()) return;
  if (!req_.is_logged) {
    req_.is_logged = true;
    server_.access_log().record(*req_.request, req_.site ? std::string_view(req_.site->name()) : std::string_view("-"),
                                req_.response.status(), req_.response.body_bytes());
    server_.site_metrics(req_.site ? std::string_view(req_.site->name()) : std::string_view("-"))
        .record(req_.served_by, req_.response.status(), monotonic_ns() - req_.start_ns);
  }
  if (!req_.is_keep_alive) {
    if (!is_read_eof_ && (!parser_.is_message_done() || in_pos_ < in_.size())) {
      start_lingering_close();
    } else {
      close();
    }
    return;
  }
  if (!parser_.is_message_done()) return;  // the rest of the body is still arriving; it is discarded
  // Parse the next request after this dispatch pass, so that we never re-enter a gateway from its own callback.
  advance(State::Finished);
  defer(&Connection::next_request);
}

}  // namespace spawnd::server
