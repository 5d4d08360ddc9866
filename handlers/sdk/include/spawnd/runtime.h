// spawnd/runtime.h — the pieces every runtime is made of. For runtime code (choose_runtime_main.cpp, the
// fork-server, FastCGI and in-process runtimes), not for handler authors.
//
// A runtime does four things: collect the meta-variables (environment, or FCGI_PARAMS), read the body, call
// run_handler(), and write cgi_response_head() + body to wherever the response goes (stdout, FCGI_STDOUT
// records, a buffer for the in-process gateway). All of it is here so that the runtimes differ only in transport.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <spawnd/handler.h>

namespace spawnd::sdk {

// Calls info.fn and maps every exception to a response with ctx.classify() (HttpError -> its status, db busy ->
// 503 + Retry-After, else 500 + one log line). Never lets an exception escape.
[[nodiscard]] Response run_handler(const HandlerInfo& info, Request& req, Context& ctx) noexcept;

// The CGI response header block for `resp` (RFC 3875 §6): "Status: 200 OK", the handler's fields in order,
// Content-Type if the handler set none (application/octet-stream for a body, text/plain for an empty one: strict
// CGI hosts reject a document response without it, RFC 3875 §6.2.1), Content-Length, then the empty line. For a
// HEAD request the caller must not send the body, but Content-Length still gives its length (RFC 9110 §9.3.2).
// 1xx, 204 and 304 get neither Content-Type nor Content-Length, and no body is sent (RFC 9110 §8.6).
[[nodiscard]] std::string cgi_response_head(const Response& resp);
// Whether the body of `resp` is to be sent for a request with `method`.
[[nodiscard]] bool response_has_body(const Response& resp, std::string_view method) noexcept;

// Parses CONTENT_LENGTH (RFC 3875 §4.1.2: 1*digit; unset or empty means no body). Returns false if malformed.
[[nodiscard]] bool parse_content_length(std::string_view text, size_t& out) noexcept;

// A request the SDK answers itself, without calling the handler, because its body cannot be taken as it is.
struct EarlyError {
  int status = 0;            // 0: none; else the status to answer with ctx.error()
  const char* message = "";  // shown to the client: static text, never client input
};

inline constexpr const char* kShortBodyMessage = "request body shorter than CONTENT_LENGTH";

// What a runtime must read as the body, decided before reading any: CONTENT_LENGTH bytes (RFC 3875 §4.2), or an
// early error: 400 if CONTENT_LENGTH is malformed, 413 if it is over limits.max_body_bytes (refused unread). A body
// that then turns out shorter than `length` is the runtime's to answer, with 400 and kShortBodyMessage.
struct BodyExpectation {
  size_t length = 0;  // 0 when there is no body or `error` is set
  EarlyError error;
};
[[nodiscard]] BodyExpectation expect_body(const MetaVars& meta, const Limits& limits) noexcept;

// A response as every runtime sends it: `head` (cgi_response_head), then body() — empty for HEAD and for statuses
// without a body.
struct CgiReply {
  Response response;
  std::string head;
  bool is_body_sent = false;
  [[nodiscard]] std::string_view body() const noexcept {
    return is_body_sent ? std::string_view(response.body()) : std::string_view();
  }
};

// The transport-independent end of a request, shared by all runtimes: builds the Request from `meta` and `body`,
// answers `early` (status != 0) with ctx.error() without calling the handler, else calls run_handler(). Never
// throws for anything the handler or the client did (only std::bad_alloc could escape).
[[nodiscard]] CgiReply answer(const HandlerInfo& info, Context& ctx, MetaVars meta, std::string body,
                              EarlyError early);

// Reads exactly `length` bytes of body from `fd` (blocking) into `out`. Returns 0 on success, or an HTTP status
// for the error: 400 if the stream ends early (the client sent less than CONTENT_LENGTH), 500 on a read error.
// The caller has already checked `length` against Limits::max_body_bytes (413).
[[nodiscard]] int read_body(int fd, size_t length, std::string& out);

// The settings a Context needs, from a meta-variable list (SPAWND_DB, SPAWND_PRAGMAS), falling back to the
// process environment for each one not in `meta`.
[[nodiscard]] Context::DbConfig db_config_from(const MetaVars& meta);

// The handler's name: info.name, else the last path component of argv0.
[[nodiscard]] std::string handler_name(const HandlerInfo& info, const char* argv0);

// The CGI runtime: one request from the environment and stdin, the response on stdout. Returns main()'s exit code:
// 0 when a response (of any status) was written, 1 if stdout failed.
int run_cgi(const HandlerInfo& info, const char* argv0, char** envp);
// The same, with a Context built before the request arrived (a pre-forked child's, its database maybe open and
// warmed by HandlerInfo::warm_up): used if its DbConfig is the request's, else dropped (closing its connection) for
// a fresh one. The caller has made sure an open connection is to the file now at the path (not a replaced one).
int run_cgi(const HandlerInfo& info, const char* argv0, char** envp, std::unique_ptr<Context> warm);

// The fork-server runtime (common/fork_protocol.h): started once by `spawnd --mode fork` with the control socket on
// `control_fd`, it sends Ready, then forks one child per Spawn message; the child takes the message's three fds as
// stdin, stdout and stderr and its environment as its own, and runs run_cgi() exactly as a CGI process would.
// Never calls the handler, builds a Context or opens the database in the fork server itself. Returns main()'s exit
// code: 0 when spawnd closed the control socket, 2 if `control_fd` is not a usable control socket, 1 if poll()
// itself failed. A malformed message is refused and logged, never fatal.
int run_fork_server(const HandlerInfo& info, const char* argv0, int control_fd);

// The FastCGI runtime (FastCGI Specification 1.0): a FastCGI application in the responder role (§6.2) serving the
// connections of `listen_fd`, a listening socket (fd 0, FCGI_LISTENSOCK_FILENO, §2.2, when a web server, spawn-fcgi
// or spawnd's process manager started us). It is set O_NONBLOCK: several processes may share it, and the one that
// loses the race for a connection must not block in accept(). One
// connection at a time, one request at a time on it: FCGI_GET_VALUES answers FCGI_MAX_CONNS=1, FCGI_MAX_REQS=1,
// FCGI_MPXS_CONNS=0 (§4.1); a second FCGI_BEGIN_REQUEST while one is in progress gets FCGI_CANT_MPX_CONN, a role
// other than FCGI_RESPONDER FCGI_UNKNOWN_ROLE, an unknown management record FCGI_UNKNOWN_TYPE (§4.2), and
// FCGI_ABORT_REQUEST ends the request without calling the handler (§5.4). A request is FCGI_PARAMS (at most 1 MiB
// in all, else 431) then FCGI_STDIN, taken as CGI takes the environment and stdin (expect_body(), answer()); the
// response goes out as FCGI_STDOUT records, then FCGI_END_REQUEST (FCGI_REQUEST_COMPLETE, app status 0); without
// FCGI_KEEP_CONN the connection is closed after it (§5.1). A malformed record logs one line and closes that
// connection only. One Context for the whole process, its DbConfig from the process environment (SPAWND_DB,
// SPAWND_PRAGMAS), never from FCGI_PARAMS. SIGPIPE is ignored; stderr stays fd 2.
// Returns main()'s exit code: 0 after SIGTERM (an idle process exits at once, a request in progress is answered
// first), 2 if `listen_fd` is not a listening socket, 1 if accept() or poll() fails for good.
int run_fastcgi(const HandlerInfo& info, const char* argv0, int listen_fd);

// `HANDLER --fastcgi ADDRESS`: creates the listening socket, prints "handler NAME: fastcgi: listening on WHERE" on
// stderr (with the port chosen for port 0), then run_fastcgi(). ADDRESS is "unix:PATH" (a socket file already at
// PATH is removed first if nobody listens on it; any other file there is an error) or "HOST:PORT" (a numeric IPv4
// or bracketed IPv6 address; port 0 picks a free port). Returns 2 for a malformed ADDRESS, 1 if the socket
// cannot be made, else what run_fastcgi() returns.
int run_fastcgi_at(const HandlerInfo& info, const char* argv0, std::string_view address);

}  // namespace spawnd::sdk
