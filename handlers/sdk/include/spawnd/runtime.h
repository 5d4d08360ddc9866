// spawnd/runtime.h — the pieces every runtime is made of. For runtime code (cgi_main.cpp, the fork-server runtime,
// the in-process runtime; the FastCGI runtime later), not for handler authors.
//
// A runtime does four things: collect the meta-variables (environment, or FCGI_PARAMS), read the body, call
// run_handler(), and write cgi_response_head() + body to wherever the response goes (stdout, FCGI_STDOUT
// records, a buffer for the in-process gateway). All of it is here so that the runtimes differ only in transport.
#pragma once

#include <cstddef>
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

// The CONTENT_LENGTH check every runtime makes before it takes the body (RFC 3875 §4.2). `status` 0: fine, and
// `length` is the body's size in bytes; else `status` is 400 (malformed CONTENT_LENGTH) or 413 (over the handler's
// Limits::max_body_bytes) and `message` says why, for ctx.error().
struct BodyCheck {
  int status = 0;
  const char* message = "";
  size_t length = 0;
};
[[nodiscard]] BodyCheck check_content_length(const HandlerInfo& info, const MetaVars& meta) noexcept;

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

// The fork-server runtime (common/fork_protocol.h): started once by `spawnd --mode fork` with the control socket on
// `control_fd`, it sends Ready, then forks one child per Spawn message; the child takes the message's three fds as
// stdin, stdout and stderr and its environment as its own, and runs run_cgi() exactly as a CGI process would.
// Never calls the handler, builds a Context or opens the database in the fork server itself. Returns main()'s exit
// code: 0 when spawnd closed the control socket, 2 if `control_fd` is not a usable control socket, 1 if poll()
// itself failed. A malformed message is refused and logged, never fatal.
int run_fork_server(const HandlerInfo& info, const char* argv0, int control_fd);

}  // namespace spawnd::sdk
