// Unit tests for common/net_addr.h: the address forms and their errors, formatting that round-trips, and real
// sockets (bind + connect over loopback and over a unix socket).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "common/net_addr.h"

namespace net = spawnd::net;
using net::AddrErrc;

namespace {

std::uint16_t port_of(const net::SockAddr& a) {
  std::uint16_t port = 0;
  (void)net::format_host(a.storage, port);
  return port;
}

// A private directory for unix sockets, removed with what is in it.
struct SocketDir {
  std::string path;
  SocketDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "spawnd-net-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~SocketDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Connects to `a` and waits (bounded) until the connect is done; the accepted end comes from `listener`.
void connect_and_accept(const net::SockAddr& a, int listener) {
  spawnd::Result<net::Connecting> c = net::connect_nonblocking(a);
  REQUIRE(c);
  if (!c->is_connected) {
    pollfd pfd{c->fd.get(), POLLOUT, 0};
    REQUIRE(::poll(&pfd, 1, 5000) == 1);
    int err = -1;
    socklen_t len = sizeof err;
    REQUIRE(::getsockopt(c->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0);
    CHECK(err == 0);
  }
  pollfd lp{listener, POLLIN, 0};
  REQUIRE(::poll(&lp, 1, 5000) == 1);
  spawnd::Fd accepted(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  CHECK(accepted);
  const char byte = 'x';
  REQUIRE(::send(c->fd.get(), &byte, 1, MSG_NOSIGNAL) == 1);
  char got = 0;
  CHECK(::recv(accepted.get(), &got, 1, 0) == 1);
  CHECK(got == 'x');
}

}  // namespace

TEST_CASE("split_host_port takes HOST:PORT at the last colon and [V6]:PORT without its brackets", "[unit][net-addr]") {
  auto hp = net::split_host_port("127.0.0.1:8080");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == "8080");
  CHECK_FALSE(hp->is_bracketed);

  hp = net::split_host_port("[::1]:9000");
  REQUIRE(hp);
  CHECK(hp->host == "::1");
  CHECK(hp->port == "9000");
  CHECK(hp->is_bracketed);

  hp = net::split_host_port(":8080");  // every local address, for --listen
  REQUIRE(hp);
  CHECK(hp->host.empty());

  hp = net::split_host_port("::1:8080");  // unbracketed: the last colon separates the port
  REQUIRE(hp);
  CHECK(hp->host == "::1");
  CHECK(hp->port == "8080");
}

TEST_CASE("split_host_port names what is missing", "[unit][net-addr]") {
  CHECK(net::split_host_port("localhost").error() == AddrErrc::NotHostPort);
  CHECK(net::split_host_port("").error() == AddrErrc::NotHostPort);
  CHECK(net::split_host_port("[::1]").error() == AddrErrc::BadBracket);
  CHECK(net::split_host_port("[::1]9000").error() == AddrErrc::BadBracket);
  CHECK(net::split_host_port("[::1:9000").error() == AddrErrc::BadBracket);
  CHECK(net::split_host_port("127.0.0.1:").error() == AddrErrc::MissingPort);
  CHECK(net::split_host_port("[::1]:").error() == AddrErrc::MissingPort);
  CHECK(net::split_host_port("127.0.0.1:").error().message() == "missing port");
  CHECK(net::split_host_port("x").error().message() == "expected HOST:PORT");
  CHECK(net::split_host_port("[x").error().message() == "expected [IPV6]:PORT");
}

TEST_CASE("parse_numeric takes unix:PATH, IPV4:PORT and [IPV6]:PORT", "[unit][net-addr]") {
  auto a = net::parse_numeric("unix:/run/app.sock");
  REQUIRE(a);
  REQUIRE(a->family() == AF_UNIX);
  CHECK(std::string(reinterpret_cast<const sockaddr_un&>(a->storage).sun_path) == "/run/app.sock");
  CHECK(a->length == sizeof(sockaddr_un));

  a = net::parse_numeric("10.1.2.3:0");
  REQUIRE(a);
  REQUIRE(a->family() == AF_INET);
  CHECK(a->length == sizeof(sockaddr_in));
  CHECK(port_of(*a) == 0);

  a = net::parse_numeric("[::1]:65535");
  REQUIRE(a);
  REQUIRE(a->family() == AF_INET6);
  CHECK(a->length == sizeof(sockaddr_in6));
  CHECK(port_of(*a) == 65535);

  const std::string longest = "/" + std::string(106, 'x');  // 107 bytes and the NUL fill sun_path
  CHECK(net::parse_numeric("unix:" + longest));
}

TEST_CASE("parse_numeric refuses names, unbracketed IPv6 and bad ports", "[unit][net-addr]") {
  struct Case {
    std::string text;
    AddrErrc error;
  };
  const Case cases[] = {
      {"unix:", AddrErrc::BadUnixPath},
      {"unix:/" + std::string(107, 'x'), AddrErrc::BadUnixPath},
      {"127.0.0.1", AddrErrc::NotHostPort},
      {"127.0.0.1:", AddrErrc::MissingPort},
      {"127.0.0.1:http", AddrErrc::BadPort},
      {"127.0.0.1:65536", AddrErrc::BadPort},
      {"127.0.0.1:000080", AddrErrc::BadPort},  // at most 5 digits
      {"127.0.0.1:-1", AddrErrc::BadPort},
      {"localhost:9000", AddrErrc::NotNumericHost},  // a name needs getaddrinfo
      {":9000", AddrErrc::NotNumericHost},
      {"::1:9000", AddrErrc::NotNumericHost},
      {"[127.0.0.1]:9000", AddrErrc::NotNumericHost},
      {"[::1]9000", AddrErrc::BadBracket},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto a = net::parse_numeric(c.text);
    REQUIRE_FALSE(a);
    CHECK(a.error() == c.error);
    CHECK_FALSE(a.error().message().empty());
  }
}

TEST_CASE("parse_numeric_host takes a bare IPv4 or IPv6 address, and unmap_v4 turns ::ffff:a.b.c.d into a.b.c.d",
          "[unit][net-addr]") {
  auto v4 = net::parse_numeric_host("192.0.2.7");
  REQUIRE(v4);
  CHECK(v4->family() == AF_INET);
  CHECK(v4->length == sizeof(sockaddr_in));
  CHECK(net::to_string(*v4) == "192.0.2.7:0");
  auto v6 = net::parse_numeric_host("2001:db8::1");
  REQUIRE(v6);
  CHECK(v6->family() == AF_INET6);
  CHECK(v6->length == sizeof(sockaddr_in6));
  CHECK(net::to_string(*v6) == "[2001:db8::1]:0");
  for (const std::string_view bad : {"", "[::1]", "::1:", "1.2.3", "1.2.3.4:80", "host.example", "1.2.3.4 ",
                                     "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"}) {
    CAPTURE(bad);
    auto a = net::parse_numeric_host(bad);
    REQUIRE_FALSE(a);
    CHECK(a.error() == AddrErrc::NotNumericHost);
  }

  auto mapped = net::parse_numeric("[::ffff:192.0.2.7]:4242");
  REQUIRE(mapped);
  const net::SockAddr unmapped = net::unmap_v4(*mapped);
  CHECK(unmapped.family() == AF_INET);
  CHECK(unmapped.length == sizeof(sockaddr_in));
  CHECK(net::to_string(unmapped) == "192.0.2.7:4242");
  CHECK(net::to_string(net::unmap_v4(*v6)) == "[2001:db8::1]:0");  // any other address as it is
  CHECK(net::to_string(net::unmap_v4(*v4)) == "192.0.2.7:0");
}

TEST_CASE("to_string prints what parse_numeric reads back", "[unit][net-addr]") {
  for (const std::string_view text : {"127.0.0.1:8080", "[::1]:9000", "[fe80::1]:1", "unix:/tmp/x.sock",
                                      "0.0.0.0:0"}) {
    CAPTURE(text);
    auto a = net::parse_numeric(text);
    REQUIRE(a);
    CHECK(net::to_string(*a) == text);
  }
  CHECK(net::to_string(net::SockAddr{}) == "?");

  std::uint16_t port = 7;
  sockaddr_storage unix_ss{};
  unix_ss.ss_family = AF_UNIX;
  CHECK(net::format_host(unix_ss, port) == "?");
  CHECK(port == 7);  // untouched for a family without a port
}

TEST_CASE("uri_host brackets an IPv6 literal and join_host_port makes HOST:PORT, as Go's net.JoinHostPort",
          "[unit][net-addr]") {
  CHECK(net::uri_host("::1") == "[::1]");
  CHECK(net::uri_host("2001:db8::1") == "[2001:db8::1]");
  CHECK(net::uri_host("[::1]") == "[::1]");  // bracketed already
  CHECK(net::uri_host("127.0.0.1") == "127.0.0.1");
  CHECK(net::uri_host("example.org") == "example.org");
  CHECK(net::join_host_port("::1", 8443) == "[::1]:8443");
  CHECK(net::join_host_port("[::1]", 80) == "[::1]:80");
  CHECK(net::join_host_port("example.org", 8080) == "example.org:8080");
  spawnd::Result<net::HostPort> back = net::split_host_port(net::join_host_port("fe80::1", 443));
  REQUIRE(back);
  CHECK(back->host == "fe80::1");
  CHECK(back->port == "443");
}

TEST_CASE("host_without_port takes the uri-host of a Host field value, an IPv6 literal's colons kept",
          "[unit][net-addr]") {
  CHECK(net::host_without_port("example.org:8080") == "example.org");
  CHECK(net::host_without_port("example.org") == "example.org");
  CHECK(net::host_without_port("[::1]:8080") == "[::1]");
  CHECK(net::host_without_port("[::1]") == "[::1]");
  CHECK(net::host_without_port("[2001:db8::1]") == "[2001:db8::1]");
  CHECK(net::host_without_port("127.0.0.1:80") == "127.0.0.1");
  CHECK(net::host_without_port("example.org:") == "example.org");  // an empty port (RFC 9110 §4.2.3 allows it)
  CHECK(net::host_without_port("") == "");
}

TEST_CASE("format_host shows an IPv4 client of a dual-stack socket (v4-mapped) as its IPv4 address",
          "[unit][net-addr]") {
  auto mapped = net::parse_numeric("[::ffff:192.0.2.7]:4242");
  REQUIRE(mapped);
  REQUIRE(mapped->family() == AF_INET6);
  std::uint16_t port = 0;
  CHECK(net::format_host(mapped->storage, port) == "192.0.2.7");
  CHECK(port == 4242);
  CHECK(net::to_string(*mapped) == "192.0.2.7:4242");
  // Other IPv6 addresses keep their own form, ::ffff:0:0/96's neighbours included.
  auto v6 = net::parse_numeric("[::fffe:c000:207]:1");
  REQUIRE(v6);
  CHECK(net::format_host(v6->storage, port) == "::fffe:c000:207");
}

TEST_CASE("resolve for a listening socket: an empty host is every address, the port must be numeric",
          "[unit][net-addr]") {
  auto all = net::resolve({"", "0", false}, net::Use::Listen);
  REQUIRE(all);
  REQUIRE_FALSE(all->empty());
  CHECK(port_of(all->front()) == 0);

  auto loopback = net::resolve({"localhost", "8080", false}, net::Use::Listen);
  REQUIRE(loopback);
  CHECK(port_of(loopback->front()) == 8080);

  auto named_port = net::resolve({"127.0.0.1", "http", false}, net::Use::Listen);
  REQUIRE_FALSE(named_port);
  CHECK(named_port.error().category() == net::gai_category());
}

TEST_CASE("resolve_endpoint: unix:PATH or HOST:PORT for a connect, where a host is required", "[unit][net-addr]") {
  auto a = net::resolve_endpoint("localhost:9000");
  REQUIRE(a);
  CHECK(port_of(*a) == 9000);
  a = net::resolve_endpoint("[::1]:9001");
  REQUIRE(a);
  CHECK(a->family() == AF_INET6);
  a = net::resolve_endpoint("unix:/run/x.sock");
  REQUIRE(a);
  CHECK(a->family() == AF_UNIX);

  CHECK(net::resolve_endpoint(":9000").error() == AddrErrc::MissingHost);
  CHECK(net::resolve_endpoint("unix:").error() == AddrErrc::BadUnixPath);
  CHECK(net::resolve_endpoint("127.0.0.1").error() == AddrErrc::NotHostPort);
  CHECK(net::resolve_endpoint("127.0.0.1:notaport").error().category() == net::gai_category());
}

TEST_CASE("listen_on and connect_nonblocking over IPv4 loopback, port 0", "[unit][net-addr]") {
  auto any_port = net::parse_numeric("127.0.0.1:0");
  REQUIRE(any_port);
  auto listener = net::listen_on(*any_port, {.backlog = 8, .is_nonblocking = true});
  REQUIRE(listener);
  auto bound = net::local_address(listener->get());
  REQUIRE(bound);
  CHECK(port_of(*bound) != 0);
  CHECK(net::to_string(*bound).starts_with("127.0.0.1:"));
  CHECK((::fcntl(listener->get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((::fcntl(listener->get(), F_GETFL) & O_NONBLOCK) != 0);
  connect_and_accept(*bound, listener->get());

  // The same port again while it is taken: EADDRINUSE, as a value.
  auto again = net::listen_on(*bound, {});
  REQUIRE_FALSE(again);
  CHECK(again.error() == std::errc::address_in_use);
}

TEST_CASE("connect_nonblocking to a unix path nobody listens on fails at once", "[unit][net-addr]") {
  SocketDir dir;
  auto a = net::unix_address(dir.path + "/nobody.sock");
  REQUIRE(a);
  auto c = net::connect_nonblocking(*a);
  REQUIRE_FALSE(c);
  CHECK(c.error() == std::errc::no_such_file_or_directory);
}

TEST_CASE("listen_on a unix socket: a stale socket file is replaced, a live one or another file is not",
          "[unit][net-addr]") {
  SocketDir dir;
  const std::string path = dir.path + "/app.sock";
  auto a = net::unix_address(path);
  REQUIRE(a);
  {
    auto first = net::listen_on(*a, {});
    REQUIRE(first);
    connect_and_accept(*a, first->get());

    // Live: RemoveIfUnused refuses, Keep fails in bind.
    auto second = net::listen_on(*a, {.stale = net::StaleSocket::RemoveIfUnused});
    REQUIRE_FALSE(second);
    CHECK(second.error() == AddrErrc::SocketInUse);
    auto kept = net::listen_on(*a, {});
    REQUIRE_FALSE(kept);
    CHECK(kept.error() == std::errc::address_in_use);
  }
  // Its listener closed, the file stays behind: stale, so it is replaced.
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  auto again = net::listen_on(*a, {.stale = net::StaleSocket::RemoveIfUnused});
  REQUIRE(again);
  connect_and_accept(*a, again->get());
  // Remove takes it even while it is live (a directory of our own, where nobody else has a socket).
  auto replaced = net::listen_on(*a, {.backlog = 4, .stale = net::StaleSocket::Remove});
  REQUIRE(replaced);
  connect_and_accept(*a, replaced->get());

  const std::string plain = dir.path + "/plain";
  std::ofstream(plain) << "not a socket\n";
  auto file = net::unix_address(plain);
  REQUIRE(file);
  auto refused = net::listen_on(*file, {.stale = net::StaleSocket::RemoveIfUnused});
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == AddrErrc::NotASocket);
  CHECK(refused.error().message() == "the file exists and is not a socket");
  CHECK(std::filesystem::exists(plain));
}

TEST_CASE("host_name_key lower-cases a host name and drops one trailing dot", "[net_addr]") {
  CHECK(net::host_name_key("Example.ORG") == "example.org");
  CHECK(net::host_name_key("example.org.") == "example.org");
  CHECK(net::host_name_key("[::1]") == "[::1]");
  CHECK(net::host_name_key("") == "");
  CHECK(net::host_name_key(".") == "");
}
