// cgi_main.cpp — main() of every handler executable; it picks the runtime. Linked as its own library
// (spawnd_sdk_main) into handler executables only, so that tests and the in-process build can link spawnd_sdk
// without a second main().
//
// Today the only runtime is CGI. The others slot in here without touching handler code:
//  - FastCGI: fd 0 is a listening socket (FCGI_LISTENSOCK_FILENO, FastCGI spec §2.2) or `--fastcgi ADDR`;
//  - fork server: `--fork-server`: start once, fork a child per request that gets env + stdio over a socket.
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
    "spawnd-fork-server-protocol-1";
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

void say(const char* msg, size_t len) { [[maybe_unused]] ssize_t rc = ::write(STDERR_FILENO, msg, len); }

}  // namespace

int main(int argc, char** argv) {
  const spawnd::sdk::HandlerInfo& info = spawnd::sdk::detail::registered_handler;
  const char* argv0 = argc > 0 ? argv[0] : nullptr;
  // The marker's address escapes into an empty asm: no code, but the linker must keep what main() refers to.
  asm volatile("" : : "r"(spawnd_fork_server_marker));

  // Command-line flags only outside CGI: a CGI server may pass the words of an "indexed" query as arguments
  // (RFC 3875 §4.4), and a query must never pick the runtime.
  const bool is_cgi = std::getenv("GATEWAY_INTERFACE") != nullptr;
  bool wants_other_runtime = stdin_is_listening_socket();
  if (!is_cgi && argc > 1 && (std::strcmp(argv[1], "--fastcgi") == 0 || std::strcmp(argv[1], "--fork-server") == 0))
    wants_other_runtime = true;
  if (wants_other_runtime) {
    static const char msg[] = "handler: only the CGI runtime is built so far (FastCGI and fork server are to come)\n";
    say(msg, sizeof msg - 1);
    return 2;
  }
  return spawnd::sdk::run_cgi(info, argv0, environ);
}
