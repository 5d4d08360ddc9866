// choose_runtime_main.cpp — main() of every handler executable: it chooses the runtime that serves (fork server,
// FastCGI or CGI; the fourth, in-process, is a shared object's entry point, inproc_runtime.cpp). Linked as its own
// library (spawnd_sdk_main) into handler executables only, so that tests and the in-process build can link
// spawnd_sdk without a second main().
//
// The runtimes, in the order main() looks for them:
//  - fork server: SPAWND_FORK_SERVER=<fd> in the environment (`spawnd --mode fork` sets it, with the control
//    socket on that fd, common/fork_protocol.h): start once, fork a child per request that runs as under CGI;
//  - FastCGI (fastcgi_runtime.cpp): fd 0 is a listening socket (FCGI_LISTENSOCK_FILENO, FastCGI spec §2.2: a web
//    server, spawn-fcgi or spawnd's process manager started us), or `--fastcgi unix:PATH|HOST:PORT` outside CGI,
//    where we make the listening socket ourselves;
//  - CGI (RFC 3875): everything else.
#include <spawnd/runtime.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/fork_protocol.h"

extern char** environ;

// The fork-server marker: spawnd scans a handler executable's bytes for kForkServerMarker before it starts the file
// as a fork server, so that it never hands a control socket to a program that does not speak the protocol. It lives
// in main()'s translation unit, which every handler links; `used` keeps the compiler from dropping it, `retain`
// (and the reference in main()) keeps a --gc-sections link from dropping it.
#if defined(__has_attribute) && __has_attribute(retain)
#define SPAWND_RETAIN retain,
#else
#define SPAWND_RETAIN
#endif
// (extern "C" on the declaration itself, not a block: that is what gives a const variable external linkage.)
extern "C" __attribute__((SPAWND_RETAIN used, visibility("default"))) constexpr char spawnd_fork_server_marker[] =
    "spawnd-fork-server-protocol-2";
#undef SPAWND_RETAIN

namespace {

constexpr bool same_text(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}
static_assert(same_text(spawnd_fork_server_marker, spawnd::fork_protocol::kForkServerMarker),
              "the embedded marker must be the protocol's");

// fd 0 is a listening socket: we were started as a FastCGI application. One getsockopt(2), ENOTSOCK on a pipe.
bool stdin_is_listening_socket() {
  int listening = 0;
  socklen_t len = sizeof listening;
  return ::getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0;
}

// The control fd named by SPAWND_FORK_SERVER ("3"), or -1 if the value is not a small non-negative number.
int parse_fd(const char* text) {
  int fd = 0;
  if (*text == '\0') return -1;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9' || fd > 100'000) return -1;
    fd = fd * 10 + (*text - '0');
  }
  return fd;
}

void say(const char* msg, size_t len) { [[maybe_unused]] ssize_t rc = ::write(STDERR_FILENO, msg, len); }

}  // namespace

int main(int argc, char** argv) {
  const spawnd::sdk::HandlerInfo& info = spawnd::sdk::detail::registered_handler;
  const char* argv0 = argc > 0 ? argv[0] : nullptr;
  // The marker's address escapes into an empty asm: no code, but the linker must keep what main() refers to.
  asm volatile("" : : "r"(spawnd_fork_server_marker));

  // The fork server is chosen by spawnd through the environment, never by the request: meta-variables from the
  // client are all HTTP_*, CONTENT_*, ... and cannot be named SPAWND_FORK_SERVER.
  if (const char* control = std::getenv(spawnd::fork_protocol::kForkServerEnv)) {
    int fd = parse_fd(control);
    if (fd < 0) {
      static const char msg[] = "handler: SPAWND_FORK_SERVER must be the control socket's fd number\n";
      say(msg, sizeof msg - 1);
      return 2;
    }
    return spawnd::sdk::run_fork_server(info, argv0, fd);
  }

  // Command-line flags only outside CGI: a CGI server may pass the words of an "indexed" query as arguments
  // (RFC 3875 §4.4), and a query must never pick the runtime.
  const bool is_cgi = std::getenv("GATEWAY_INTERFACE") != nullptr;
  if (!is_cgi && argc > 1 && std::strcmp(argv[1], "--fork-server") == 0) {
    static const char msg[] =
        "handler: the fork server is started by `spawnd --mode fork` (SPAWND_FORK_SERVER=3, control socket on fd 3)\n";
    say(msg, sizeof msg - 1);
    return 2;
  }
  if (stdin_is_listening_socket()) return spawnd::sdk::run_fastcgi(info, argv0, STDIN_FILENO);
  if (!is_cgi && argc > 1 && std::strcmp(argv[1], "--fastcgi") == 0) {
    if (argc != 3) {
      static const char msg[] = "handler: usage: HANDLER --fastcgi unix:PATH|HOST:PORT\n";
      say(msg, sizeof msg - 1);
      return 2;
    }
    return spawnd::sdk::run_fastcgi_at(info, argv0, argv[2]);
  }
  return spawnd::sdk::run_cgi(info, argv0, environ);
}
