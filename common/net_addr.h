// common/net_addr.h — network addresses, once: parsing "HOST:PORT", "[IPV6]:PORT" and "unix:PATH", resolving them to
// a socket address, printing socket addresses, and the two socket set-ups spawnd uses (a listening socket, a
// non-blocking connect).
//
// Users: the server's --listen (server.cpp), --fastcgi-pass and the FastCGI workers' sockets (fastcgi_gateway.cpp),
// REMOTE_ADDR / SERVER_PORT (connection.cpp), --status-allow (status_page.cpp), and the SDK's `--fastcgi ADDR`
// (fastcgi_runtime.cpp).
//
// Two ways from text to an address. parse_numeric() never calls getaddrinfo(): the handler SDK links statically,
// and a static getaddrinfo() loads NSS modules of whatever glibc is installed at run time. resolve() and
// resolve_endpoint() do call it (names from /etc/hosts or DNS); they live in net_resolve.cpp, an object file of
// their own, so that a handler linking this module never pulls getaddrinfo() in.
//
// Errors are values (std::error_code): AddrErrc in addr_category() for malformed text, the system category (errno)
// for socket calls, gai_category() for getaddrinfo(). Their message() is a phrase without the address ("missing
// port"); callers put the address and their own context in front. Nothing here throws or logs. Thread-safe.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace spawnd::net {

// What is wrong with an address text.
enum class AddrErrc {
  NotHostPort = 1,   // no ':' at all: "expected HOST:PORT"
  BadBracket,        // '[' without a following "]:": "expected [IPV6]:PORT"
  MissingPort,       // nothing after the last ':'
  MissingHost,       // nothing before it (where an empty host means nothing, as for a connect)
  BadPort,           // parse_numeric(): not 1 to 5 digits, or above 65535
  NotNumericHost,    // parse_numeric(): neither a dotted IPv4 address nor a bracketed IPv6 one
  BadUnixPath,       // "unix:" with an empty path, or one longer than sockaddr_un can hold (107 bytes)
  NotASocket,        // listen_on(), StaleSocket::RemoveIfUnused: the path exists and is not a socket
  SocketInUse,       // listen_on(), StaleSocket::RemoveIfUnused: a process accepts on that socket
};
[[nodiscard]] const std::error_category& addr_category() noexcept;
[[nodiscard]] std::error_code make_error_code(AddrErrc e) noexcept;
// getaddrinfo()'s EAI_* codes; message() is gai_strerror().
[[nodiscard]] const std::error_category& gai_category() noexcept;

// A socket address of family AF_INET, AF_INET6 or AF_UNIX, with its length (0: empty).
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  [[nodiscard]] int family() const noexcept { return storage.ss_family; }
  [[nodiscard]] const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
};

// "HOST:PORT" split at its last ':', or "[V6]:PORT" (the brackets dropped, is_bracketed set). HOST may be empty
// (":8080"); PORT is not checked beyond being non-empty.
struct HostPort {
  std::string host;
  std::string port;
  bool is_bracketed = false;
};
// Errors: NotHostPort, BadBracket, MissingPort.
[[nodiscard]] Result<HostPort> split_host_port(std::string_view text);

// An AF_UNIX address for `path` (length: the whole sockaddr_un, as every caller has always passed). Error:
// BadUnixPath if `path` is empty or does not fit in sun_path with its terminating NUL.
[[nodiscard]] Result<SockAddr> unix_address(std::string_view path);

// A numeric host alone, without port or brackets: a dotted IPv4 address ("192.0.2.1") or an IPv6 one ("2001:db8::1",
// "::ffff:192.0.2.1"), as an AF_INET or AF_INET6 address with port 0 (inet_pton(): no getaddrinfo()). Error:
// NotNumericHost. parse_numeric() reads its HOST with it, and the status page's --status-allow its networks.
[[nodiscard]] Result<SockAddr> parse_numeric_host(std::string_view host) noexcept;
// `a`, or, if it is an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2: an IPv4 client of a dual-stack
// socket), the AF_INET address a.b.c.d it maps, with the same port. format_host() shows addresses so.
[[nodiscard]] SockAddr unmap_v4(const SockAddr& a) noexcept;
// "unix:PATH", "IPV4:PORT" or "[IPV6]:PORT", numeric only: no getaddrinfo(), so static handlers may use it. PORT is
// 1 to 5 decimal digits, at most 65535 (0 lets the kernel pick). An unbracketed IPv6 host is refused (its last ':'
// would be taken for the port's). Errors: BadUnixPath, NotHostPort, BadBracket, MissingPort, BadPort, NotNumericHost.
[[nodiscard]] Result<SockAddr> parse_numeric(std::string_view text);

// What resolve() is for: a listening socket (an empty HOST means every local address; PORT must be numeric), or a
// connect (a HOST is required; PORT may be a service name from /etc/services).
enum class Use { Listen, Connect };
// Every address getaddrinfo() gives for `hp` (stream sockets, IPv4 and IPv6), in its order. Blocking (DNS): for
// start-up only. Errors: gai_category() codes (EAI_SYSTEM becomes the errno), MissingHost for Use::Connect.
[[nodiscard]] Result<std::vector<SockAddr>> resolve(const HostPort& hp, Use use);
// "unix:PATH", or "HOST:PORT" / "[IPV6]:PORT" resolved for a connect (the first address getaddrinfo() gives).
// Blocking: start-up only. Errors: BadUnixPath, NotHostPort, BadBracket, MissingPort, MissingHost, gai codes.
[[nodiscard]] Result<SockAddr> resolve_endpoint(std::string_view text);

// The numeric host of an AF_INET/AF_INET6 address ("127.0.0.1", "::1", without brackets), its port stored in `port`;
// "?" for any other family (`port` untouched). A v4-mapped IPv6 address (an IPv4 client of a dual-stack socket,
// RFC 4291 §2.5.5.2) is the IPv4 address it maps, "::ffff:127.0.0.1" → "127.0.0.1", as Apache and Go show it. For
// REMOTE_ADDR, SERVER_ADDR, SERVER_PORT and log lines.
[[nodiscard]] std::string format_host(const sockaddr_storage& ss, std::uint16_t& port);
// `host` as the host of a URI authority (RFC 3986 §3.2.2): an IPv6 literal ("::1", anything with a ':') in brackets
// ("[::1]"); a name, an IPv4 address or a literal already in brackets as it is. For Location URLs and "HOST:PORT"
// texts made of a host that came without brackets (format_host(), a socket's address).
[[nodiscard]] std::string uri_host(std::string_view host);
// "HOST:PORT" with HOST as uri_host() makes it ("[::1]:8080", "127.0.0.1:80", "example.org:8080"), as Go's
// net.JoinHostPort. split_host_port() takes it apart again.
[[nodiscard]] std::string join_host_port(std::string_view host, std::uint16_t port);
// The uri-host of a Host field value (RFC 9110 §7.2: uri-host [ ":" port ]): "example.org:8080" → "example.org",
// "[::1]:8080" → "[::1]", "example.org" and "[::1]" as they are. A view into `authority`; nothing is validated (the
// HTTP parser has refused a malformed Host field before). For site selection and SERVER_NAME.
[[nodiscard]] std::string_view host_without_port(std::string_view authority) noexcept;
// A host name as a lookup key: lower-cased (host names compare case-insensitively, RFC 4343 §2) and without one
// trailing dot ("example.org." names the host "example.org" does, RFC 1034 §3.1). How a request's Host (without its
// port) and a TLS client's SNI name are looked up among the [[site]] hosts.
[[nodiscard]] std::string host_name_key(std::string_view name);
// The whole address as text: "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock"; "?" for an empty or other family.
// parse_numeric(to_string(a)) gives `a` back (a v4-mapped address as the IPv4 address it maps: see format_host).
[[nodiscard]] std::string to_string(const SockAddr& a);
// The address socket `fd` is bound to (getsockname: the port the kernel chose for port 0). Errors: errno.
[[nodiscard]] Result<SockAddr> local_address(int fd);

// What listen_on() does with a file already at an AF_UNIX address's path.
enum class StaleSocket {
  Keep,            // nothing: bind() fails with EADDRINUSE
  Remove,          // unlink it (a path in a directory of our own)
  RemoveIfUnused,  // unlink it only if it is a socket nobody accepts on (left by an earlier run); else
                   // NotASocket or SocketInUse
};
struct ListenOptions {
  int backlog = SOMAXCONN;
  bool is_nonblocking = false;  // SOCK_NONBLOCK on the listening socket (accepted sockets choose their own)
  StaleSocket stale = StaleSocket::Keep;
};
// A close-on-exec listening stream socket bound to `addr`; AF_INET/AF_INET6 ones with SO_REUSEADDR (a restart binds
// while old connections linger in TIME_WAIT). Errors: errno of socket/bind/listen, or the StaleSocket ones.
[[nodiscard]] Result<Fd> listen_on(const SockAddr& addr, const ListenOptions& options);

// A non-blocking close-on-exec stream socket with a connect() to `addr` under way.
struct Connecting {
  Fd fd;
  bool is_connected = false;  // false: in progress; writable once it is done, then SO_ERROR says how it went
};
// Errors: errno of socket/connect (ECONNREFUSED or ENOENT: nothing listens; EAGAIN on a unix socket: its backlog
// is full). EINPROGRESS and EINTR are not errors: the connect goes on in the background.
[[nodiscard]] Result<Connecting> connect_nonblocking(const SockAddr& addr);

}  // namespace spawnd::net

template <>
struct std::is_error_code_enum<spawnd::net::AddrErrc> : std::true_type {};
