// common/net_addr.cpp — the numeric half of net_addr.h (no getaddrinfo here: see net_resolve.cpp).
#include "common/net_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/ascii.h"

namespace spawnd::net {

namespace {

class AddrCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "address"; }
  std::string message(int e) const override {
    switch (static_cast<AddrErrc>(e)) {
      case AddrErrc::NotHostPort: return "expected HOST:PORT";
      case AddrErrc::BadBracket: return "expected [IPV6]:PORT";
      case AddrErrc::MissingPort: return "missing port";
      case AddrErrc::MissingHost: return "missing host";
      case AddrErrc::BadPort: return "the port is not a number from 0 to 65535";
      case AddrErrc::NotNumericHost: return "the host is neither a numeric IPv4 address nor a bracketed IPv6 one";
      case AddrErrc::BadUnixPath: return "the socket path is empty or too long";
      case AddrErrc::NotASocket: return "the file exists and is not a socket";
      case AddrErrc::SocketInUse: return "another process is listening on this socket";
    }
    return "bad address";
  }
};

// 1 to 5 digits, at most 65535.
bool parse_port(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// RemoveIfUnused: a socket file left by an earlier run is stale when nobody accepts on it any more. A live one, or
// any other kind of file, is not ours to remove.
std::error_code remove_unused_socket(const SockAddr& addr) {
  const char* path = reinterpret_cast<const sockaddr_un*>(&addr.storage)->sun_path;
  struct stat st {};
  if (::lstat(path, &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode)) return AddrErrc::NotASocket;
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe && ::connect(probe.get(), addr.get(), addr.length) == 0) return AddrErrc::SocketInUse;
  ::unlink(path);
  return {};
}

}  // namespace

const std::error_category& addr_category() noexcept {
  static const AddrCategory category;
  return category;
}

std::error_code make_error_code(AddrErrc e) noexcept { return {static_cast<int>(e), addr_category()}; }

Result<HostPort> split_host_port(std::string_view text) {
  HostPort hp;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return make_error_code(AddrErrc::BadBracket);
    hp.host = std::string(text.substr(1, close - 1));
    hp.port = std::string(text.substr(close + 2));
    hp.is_bracketed = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return make_error_code(AddrErrc::NotHostPort);
    hp.host = std::string(text.substr(0, colon));
    hp.port = std::string(text.substr(colon + 1));
  }
  if (hp.port.empty()) return make_error_code(AddrErrc::MissingPort);
  return hp;
}

Result<SockAddr> unix_address(std::string_view path) {
  SockAddr a;
  auto& sun = reinterpret_cast<sockaddr_un&>(a.storage);
  if (path.empty() || path.size() >= sizeof sun.sun_path) return make_error_code(AddrErrc::BadUnixPath);
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());  // the rest of storage is zero: the path ends in a NUL
  a.length = sizeof sun;
  return a;
}

Result<SockAddr> parse_numeric_host(std::string_view host) noexcept {
  char text[INET6_ADDRSTRLEN];  // inet_pton() wants a C string; anything longer is no address
  if (host.size() >= sizeof text) return make_error_code(AddrErrc::NotNumericHost);
  host.copy(text, host.size());
  text[host.size()] = '\0';
  SockAddr a;
  auto& in = reinterpret_cast<sockaddr_in&>(a.storage);
  auto& in6 = reinterpret_cast<sockaddr_in6&>(a.storage);
  if (::inet_pton(AF_INET, text, &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    a.length = sizeof in;
  } else if (::inet_pton(AF_INET6, text, &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    a.length = sizeof in6;
  } else {
    return make_error_code(AddrErrc::NotNumericHost);
  }
  return a;
}

SockAddr unmap_v4(const SockAddr& a) noexcept {
  if (a.family() != AF_INET6) return a;
  const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a.storage);
  if (!IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) return a;
  SockAddr v4;
  auto& in = reinterpret_cast<sockaddr_in&>(v4.storage);
  in.sin_family = AF_INET;
  in.sin_port = in6.sin6_port;
  std::memcpy(&in.sin_addr, &in6.sin6_addr.s6_addr[12], sizeof in.sin_addr);
  v4.length = sizeof in;
  return v4;
}

Result<SockAddr> parse_numeric(std::string_view text) {
  if (text.starts_with("unix:")) return unix_address(text.substr(5));
  Result<HostPort> hp = split_host_port(text);
  if (!hp) return hp.error();
  std::uint16_t port = 0;
  if (!parse_port(hp->port, port)) return make_error_code(AddrErrc::BadPort);
  Result<SockAddr> a = parse_numeric_host(hp->host);
  // IPv6 in brackets and only there: unbracketed, its last ':' was taken for the port's.
  if (!a || (a->family() == AF_INET6) != hp->is_bracketed) return make_error_code(AddrErrc::NotNumericHost);
  if (a->family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6&>(a->storage).sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in&>(a->storage).sin_port = htons(port);
  }
  return a;
}

std::string host_name_key(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  std::string key(name);
  for (char& c : key) c = ascii_lower(c);
  return key;
}

std::string format_host(const sockaddr_storage& ss, std::uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = "?";
  SockAddr a;
  a.storage = ss;
  a = unmap_v4(a);  // ::ffff:a.b.c.d is the client a.b.c.d
  if (a.family() == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(a.storage);
    ::inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
    port = ntohs(sin.sin_port);
  } else if (a.family() == AF_INET6) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(a.storage);
    ::inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
    port = ntohs(sin6.sin6_port);
  }
  return buf;
}

std::string uri_host(std::string_view host) {
  if (host.find(':') == std::string_view::npos || host.starts_with('[')) return std::string(host);
  std::string out;
  out.reserve(host.size() + 2);
  out += '[';
  out += host;
  out += ']';
  return out;
}

std::string_view host_without_port(std::string_view authority) noexcept {
  const auto colon = authority.rfind(':');
  // A ':' inside "[...]" belongs to an IPv6 literal, not to a port.
  if (colon == std::string_view::npos || authority.find(']', colon) != std::string_view::npos) return authority;
  return authority.substr(0, colon);
}

std::string join_host_port(std::string_view host, std::uint16_t port) {
  return uri_host(host) + ":" + std::to_string(port);
}

std::string to_string(const SockAddr& a) {
  if (a.length == 0) return "?";
  if (a.family() == AF_UNIX) return "unix:" + std::string(reinterpret_cast<const sockaddr_un&>(a.storage).sun_path);
  if (a.family() != AF_INET && a.family() != AF_INET6) return "?";
  std::uint16_t port = 0;
  const std::string host = format_host(a.storage, port);
  return join_host_port(host, port);
}

Result<SockAddr> local_address(int fd) {
  SockAddr a;
  a.length = sizeof a.storage;
  if (::getsockname(fd, a.get(), &a.length) != 0) return errno_code();
  return a;
}

Result<Fd> listen_on(const SockAddr& addr, const ListenOptions& options) {
  const int type = SOCK_STREAM | SOCK_CLOEXEC | (options.is_nonblocking ? SOCK_NONBLOCK : 0);
  Fd fd(::socket(addr.family(), type, 0));
  if (!fd) return errno_code();
  if (addr.family() == AF_UNIX) {
    if (options.stale == StaleSocket::Remove) {
      ::unlink(reinterpret_cast<const sockaddr_un&>(addr.storage).sun_path);
    } else if (options.stale == StaleSocket::RemoveIfUnused) {
      if (std::error_code ec = remove_unused_socket(addr)) return ec;
    }
  } else {
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  }
  if (::bind(fd.get(), addr.get(), addr.length) != 0 || ::listen(fd.get(), options.backlog) != 0)
    return errno_code();
  return fd;
}

Result<Connecting> connect_nonblocking(const SockAddr& addr) {
  Connecting c;
  c.fd.reset(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.fd) return errno_code();
  // Not retried on EINTR: the connect goes on regardless (connect(2)), and a second call would say EALREADY.
  const int rc = ::connect(c.fd.get(), addr.get(), addr.length);
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) return errno_code();
  c.is_connected = rc == 0;
  return c;
}

}  // namespace spawnd::net
