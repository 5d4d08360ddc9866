// server/systemd.h's notifications as systemd receives them: datagrams on the socket NOTIFY_SOCKET names (here one
// of the test's own, bound in a fresh directory), and nothing at all without NOTIFY_SOCKET. The reload bracket is what
// the SIGHUP code calls; READY=1 and STOPPING=1 are also checked end to end (tests/e2e/test_systemd.cpp).
#include <catch2/catch.hpp>

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <string>

#include "common/fd.h"
#include "server/systemd.h"

namespace {

namespace fs = std::filesystem;
namespace systemd = spawnd::server::systemd;

// A datagram socket bound in a fresh directory, named by NOTIFY_SOCKET while it lives.
class NotifySocket {
 public:
  NotifySocket() {
    char dir[] = "/tmp/spawnd-notify-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    path_ = dir_ + "/notify";
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd_);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path_.c_str());
    REQUIRE(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // The next datagram, or "" if none comes within `timeout_ms`.
  std::string next(int timeout_ms = 1000) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "";
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }

 private:
  std::string dir_, path_;
  spawnd::Fd fd_;
};

}  // namespace

TEST_CASE("systemd: the reload bracket sends RELOADING=1 with MONOTONIC_USEC, then READY=1 with the outcome",
          "[unit][systemd]") {
  NotifySocket manager;
  systemd::notify_reloading();
  const std::string reloading = manager.next();
  CHECK(std::regex_match(reloading, std::regex("RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\nSTATUS=reloading")));
  systemd::notify_reloaded("reload failed: site.toml:3: unknown key; the old configuration is kept");
  CHECK(manager.next() == "READY=1\nSTATUS=reload failed: site.toml:3: unknown key; the old configuration is kept");
  systemd::notify_ready("listening on http://127.0.0.1:80");
  CHECK(manager.next() == "READY=1\nSTATUS=listening on http://127.0.0.1:80");
  systemd::notify_stopping();
  CHECK(manager.next() == "STOPPING=1\nSTATUS=shutting down: finishing in-flight responses");
}

TEST_CASE("systemd: without NOTIFY_SOCKET or LISTEN_FDS nothing is sent and no socket is taken", "[unit][systemd]") {
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  systemd::notify_ready("listening");  // no manager: returns, logs nothing
  systemd::notify_reloading();
  systemd::notify_reloaded("reloaded");
  CHECK_FALSE(systemd::take_listen_sockets().has_value());
}
