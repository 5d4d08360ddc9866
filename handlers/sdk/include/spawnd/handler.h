// spawnd/handler.h — what a handler source includes: Request, Response, Context, and SPAWND_HANDLER.
//
// A handler is one plain function
//
//     spawnd::sdk::Response handle(spawnd::sdk::Request& req, spawnd::sdk::Context& ctx);
//
// registered once per executable with SPAWND_HANDLER(handle). The macro only registers: main() lives in the
// SDK (choose_runtime_main.cpp), which picks the runtime at start-up: CGI (RFC 3875: meta-variables in the
// environment, body on stdin, response on stdout), the fork server, whose children each run exactly as under CGI,
// or FastCGI (a persistent process answering FastCGI requests on a listening socket, with one Context for all of
// them). The same source built as a shared object runs under the in-process runtime (inproc_runtime.cpp, the C
// entry point of spawnd/inproc_abi.h) on spawnd's worker threads, through the same registration: a handler never
// changes to run under any of them.
//
// A handler may throw: HttpError(status, message) answers with that status; the db library's busy error answers
// 503 with Retry-After; anything else answers 500 and logs one line "handler NAME: ..." on stderr.
#pragma once

#include <spawnd/context.h>
#include <spawnd/html.h>
#include <spawnd/http_error.h>
#include <spawnd/params.h>
#include <spawnd/request.h>
#include <spawnd/response.h>

namespace spawnd::sdk {

using HandlerFn = Response (*)(Request& req, Context& ctx);

// The format of the error responses the SDK makes for this handler (400 on bad input, 503, 500, HttpError).
enum class ErrorFormat {
  Html,  // a small text/html page (default)
  Json,  // {"error":"...","status":N} as application/json, for JSON APIs
};

// Everything the runtimes need to know about a handler. Constant-initialised: registering costs no start-up.
struct HandlerInfo {
  HandlerFn fn = nullptr;
  const char* name = nullptr;  // for log lines; nullptr means the executable's file name
  ErrorFormat error_format = ErrorFormat::Html;
  Limits limits{};
  // Optional: the work a process may do for this handler before its request is known, on the Context that will serve
  // it: open ctx.db(), run the schema migration, prepare the statements the handler borrows with
  // Connection::cached(). Called only in a pre-forked child of a fork server (`spawnd --mode fork --prefork N`),
  // after the fork (an SQLite connection never crosses one), while the child waits for a request; the request then
  // finds the connection ready. If it throws, the runtime logs one line and closes the connection, and the request
  // opens it as usual. nullptr: nothing is warmed but the process itself. Must not depend on a request.
  void (*warm_up)(Context& ctx) = nullptr;
};

namespace detail {
// Defined by SPAWND_HANDLER in the handler's source; read by the runtimes. Exactly one per executable/object.
extern const HandlerInfo registered_handler;
}  // namespace detail

}  // namespace spawnd::sdk

// spawnd_add_handler() defines SPAWND_HANDLER_NAME as the target name; outside it, the executable name is used.
#ifndef SPAWND_HANDLER_NAME
#define SPAWND_HANDLER_NAME nullptr
#endif

// Registers `function` as this executable's handler. Optional designated initialisers for the remaining HandlerInfo
// fields follow, in declaration order, e.g.
//     SPAWND_HANDLER(handle, .error_format = spawnd::sdk::ErrorFormat::Json);
//     SPAWND_HANDLER(handle, .limits = {.max_body_bytes = 1 << 20});
// Use at namespace scope, once, with a terminating semicolon.
#define SPAWND_HANDLER(function, ...)                                                 \
  constinit const ::spawnd::sdk::HandlerInfo spawnd::sdk::detail::registered_handler{ \
      .fn = (function), .name = SPAWND_HANDLER_NAME __VA_OPT__(, ) __VA_ARGS__}
