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

extern char** environ;

namespace {

// fd 0 is a listening socket: we were started as a FastCGI application. One getsockopt(2), ENOTSOCK on a pipe.
bool stdin_is_listening_socket() {
  int listening = 0;
  socklen_t len = sizeof listening;
  return ::getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0;
}

}  // namespace

int main(int argc, char** argv) {
  const spawnd::sdk::HandlerInfo& info = spawnd::sdk::detail::registered_handler;
  const char* argv0 = argc > 0 ? argv[0] : nullptr;

  // Command-line flags only outside CGI: a CGI server may pass the words of an "indexed" query as arguments
  // (RFC 3875 §4.4), and a query must never pick the runtime.
  const bool is_cgi = std::getenv("GATEWAY_INTERFACE") != nullptr;
  bool wants_other_runtime = stdin_is_listening_socket();
  if (!is_cgi && argc > 1 && (std::strcmp(argv[1], "--fastcgi") == 0 || std::strcmp(argv[1], "--fork-server") == 0))
    wants_other_runtime = true;
  if (wants_other_runtime) {
    static const char msg[] = "handler: only the CGI runtime is built so far (FastCGI and fork server are to come)\n";
    [[maybe_unused]] ssize_t rc = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    return 2;
  }
  return spawnd::sdk::run_cgi(info, argv0, environ);
}
