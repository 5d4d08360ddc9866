// End-to-end tests of spawnd under systemd's protocols (server/systemd.h) and of its unit files
// (packaging/systemd/): socket activation (one socket, or sockets named http and https) through
// systemd-socket-activate (Debian's systemd package), the one tool that implements LISTEN_PID/LISTEN_FDS/
// LISTEN_FDNAMES outside a running systemd; readiness notification read from a NOTIFY_SOCKET datagram socket of the
// test's own, as systemd reads it; and the units checked by systemd-analyze verify. None of them needs systemd
// running as PID 1.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "daemon.h"
#include "harness.h"
#include "pki.h"
#include "proc.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* kSocketActivate = "/usr/bin/systemd-socket-activate";
constexpr milliseconds kStartTimeout{10'000};

// Starts `spawnd_args` under `systemd-socket-activate -l 127.0.0.1:PORT` (plus `activate_flags`) and waits until it
// listens; returns the port. systemd-socket-activate execs spawnd (same pid) at the first connection.
std::uint16_t socket_activate(std::unique_ptr<Daemon>& daemon, const std::string& log,
                              const std::vector<std::string>& activate_flags,
                              const std::vector<std::string>& spawnd_args) {
  require_executable(kSocketActivate, "systemd");
  for (int attempt = 0;; ++attempt) {
    const std::uint16_t port = free_port();
    std::vector<std::string> argv{kSocketActivate, "-l", "127.0.0.1:" + std::to_string(port)};
    argv.insert(argv.end(), activate_flags.begin(), activate_flags.end());
    argv.emplace_back(SPAWND_BINARY);
    argv.insert(argv.end(), spawnd_args.begin(), spawnd_args.end());
    daemon = std::make_unique<Daemon>(argv, log);
    const std::string listening = "Listening on 127.0.0.1:" + std::to_string(port);
    if (wait_until([&] { return read_file(log).find(listening) != std::string::npos || !daemon->is_running(); },
                   kStartTimeout) &&
        daemon->is_running())
      return port;
    // The port was taken between free_port() and the bind: try another, a few times.
    INFO(read_file(log));
    REQUIRE(attempt < 3);
  }
}

// The wait status of `daemon` once it has exited (bounded wait; fails the test if it keeps running).
int wait_exit(Daemon& daemon) {
  REQUIRE(wait_until([&] { return !daemon.is_running(); }, kStartTimeout));
  return daemon.wait_status();
}

// A datagram socket bound at `path`, as systemd's notification socket is (NOTIFY_SOCKET).
Fd notify_socket(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof sun.sun_path);
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0);
  return fd;
}

// The next datagram on `fd`, or "" if none comes within `timeout_ms`.
std::string next_datagram(const Fd& fd, int timeout_ms) {
  pollfd p{fd.get(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return "";
  char buf[4096];
  const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

}  // namespace

TEST_CASE("socket activation: spawnd serves the socket systemd-socket-activate passes, not --listen",
          "[e2e][systemd]") {
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);  // for --user
  const std::string root = fs::path(dir.write("www/index.html", "<p>activated</p>\n")).parent_path().string();
  const std::string log = dir.path() + "/activate.log";
  std::vector<std::string> args{"--root", root, "--cgi-bin", SPAWND_CGI_BIN_DIR, "--mode", "fastcgi", "--workers", "1",
                                // An address no interface has: binding it would fail, so serving proves it was not.
                                "--listen", "192.0.2.1:80"};
  const bool is_root = ::geteuid() == 0;
  if (is_root) args.insert(args.end(), {"--user", "nobody", "--body-temp-dir", "/tmp"});
  std::unique_ptr<Daemon> daemon;
  const std::uint16_t port = socket_activate(daemon, log, {}, args);

  // The first connection makes systemd-socket-activate exec spawnd; it waits in the socket's backlog meanwhile.
  HttpResponse r = get(port, "/");
  INFO(read_file(log));
  CHECK(r.status == 200);
  CHECK(r.body == "<p>activated</p>\n");
  CHECK(get(port, "/cgi-bin/hello").body == "Hello, world!\n");
  const std::string text = read_file(log);
  CHECK(text.find("socket activation: serving the socket systemd passed (127.0.0.1:" + std::to_string(port) + ")") !=
        std::string::npos);
  CHECK(text.find("listening on http://127.0.0.1:" + std::to_string(port)) != std::string::npos);
  // The socket stays spawnd's: its FastCGI worker did not inherit it (close-on-exec) and saw no LISTEN_* variable.
  const pid_t pid = daemon->pid();
  const std::string listening_socket = fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/3").string();
  REQUIRE(listening_socket.rfind("socket:", 0) == 0);
  REQUIRE(wait_until([&] { return !live_children_of(pid).empty(); }, kStartTimeout));
  for (const ProcStat& child : live_children_of(pid)) {
    const std::string environment = proc_file(child.pid, "environ");
    CHECK(environment.find("LISTEN_FDS=") == std::string::npos);
    CHECK(environment.find("LISTEN_PID=") == std::string::npos);
    for (const std::string& target : fd_targets(child.pid)) CHECK(target != listening_socket);
  }
  if (is_root) {
    const passwd* pw = ::getpwnam("nobody");
    REQUIRE(pw != nullptr);
    CHECK(proc_file(pid, "status").find("Uid:\t" + std::to_string(pw->pw_uid) + "\t") != std::string::npos);
  }

  ::kill(pid, SIGTERM);
  const int status = wait_exit(*daemon);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("socket activation: the sockets named http and https serve plain HTTP and HTTPS, not --listen and "
          "--tls-listen",
          "[e2e][systemd][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "activated");
  TempDir dir;
  const std::string root = fs::path(dir.write("www/index.html", "<p>activated over TLS</p>\n")).parent_path().string();
  const std::string log = dir.path() + "/activate.log";
  const std::uint16_t tls_port = free_port();
  std::unique_ptr<Daemon> daemon;
  // Addresses no interface has for --listen and --tls-listen: binding them would fail, so serving proves it was not.
  const std::uint16_t port = socket_activate(
      daemon, log, {"-l", "127.0.0.1:" + std::to_string(tls_port), "--fdname=http:https"},
      {"--root", root, "--listen", "192.0.2.1:80", "--tls-listen", "192.0.2.1:443", "--tls-cert", leaf.cert,
       "--tls-key", leaf.key, "--redirect-https"});

  // The plain socket redirects to the HTTPS one (its port, from the socket systemd passed), which serves.
  const HttpResponse r = get(port, "/");
  INFO(read_file(log));
  CHECK(r.status == 308);
  CHECK(r.field("Location") == std::optional<std::string>("https://127.0.0.1:" + std::to_string(tls_port) + "/"));
  const ExitResult https = run_command({"curl", "-sS", "--cacert", pki.ca(), "--resolve",
                                        "localhost:" + std::to_string(tls_port) + ":127.0.0.1",
                                        "https://localhost:" + std::to_string(tls_port) + "/"},
                                       20'000);
  INFO(https.stderr_text);
  CHECK(https.stdout_text == "<p>activated over TLS</p>\n");
  const std::string text = read_file(log);
  CHECK(text.find("socket activation: serving the socket systemd passed (127.0.0.1:" + std::to_string(port) + ")") !=
        std::string::npos);
  CHECK(text.find("socket activation: serving HTTPS on the socket named https (127.0.0.1:" +
                  std::to_string(tls_port) + "); --tls-listen is not used") != std::string::npos);
  CHECK(text.find("listening on https://127.0.0.1:" + std::to_string(tls_port)) != std::string::npos);

  ::kill(daemon->pid(), SIGTERM);
  const int status = wait_exit(*daemon);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("socket activation: sockets spawnd cannot tell apart, a datagram socket, or https without a certificate "
          "are refused with exit 2",
          "[e2e][systemd]") {
  TempDir dir;
  const std::string root = fs::path(dir.write("www/index.html", "x")).parent_path().string();
  const std::string log = dir.path() + "/activate.log";
  std::unique_ptr<Daemon> daemon;
  // Starts spawnd under systemd-socket-activate with `flags` (more sockets, names), makes it exec with a connection,
  // and returns its error output once it has exited 2.
  const auto refused = [&](std::vector<std::string> flags, std::vector<std::string> spawnd_args) {
    spawnd_args.insert(spawnd_args.begin(), {"--root", root});
    const std::uint16_t port = socket_activate(daemon, log, flags, spawnd_args);
    Fd trigger = connect_to(port);  // spawnd starts, looks at the sockets, exits
    const int status = wait_exit(*daemon);
    const std::string text = read_file(log);
    INFO(text);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 2));
    return text;
  };
  const std::vector<std::string> second{"-l", "127.0.0.1:" + std::to_string(free_port())};
  const auto with = [](std::vector<std::string> flags, const std::string& more) {
    flags.push_back(more);
    return flags;
  };

  SECTION("two sockets without names (FileDescriptorName=)") {
    CHECK_THAT(refused(second, {}), Catch::Contains("spawnd: socket activation: 2 sockets passed and fd 3 (named "
                                                    "unknown) is neither http nor https"));
  }
  SECTION("two sockets named http") {
    CHECK_THAT(refused(with(second, "--fdname=http:http"), {}),
               Catch::Contains("spawnd: socket activation: two sockets named http; spawnd serves one of each"));
  }
  SECTION("a socket named https and no plain one") {
    CHECK_THAT(refused({"--fdname=https"}, {}), Catch::Contains("spawnd: socket activation: no socket named http"));
  }
  SECTION("a socket named https without --tls-cert and --tls-key") {
    CHECK_THAT(refused(with(second, "--fdname=http:https"), {}),
               Catch::Contains("spawnd: socket activation: the socket named https is served as HTTPS: it needs "
                               "tls-cert and tls-key"));
  }
  SECTION("a datagram socket (ListenDatagram=)") {
    const std::uint16_t port = socket_activate(daemon, log, {"--datagram"}, {"--root", root});
    Fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::sendto(udp.get(), "x", 1, 0, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) == 1);
    const int status = wait_exit(*daemon);
    INFO(read_file(log));
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 2);
    CHECK(read_file(log).find("spawnd: socket activation: fd 3 (named unknown) is not a listening TCP socket") !=
          std::string::npos);
  }
}

TEST_CASE("readiness: READY=1 once spawnd listens, STOPPING=1 when SIGTERM starts the shutdown (NOTIFY_SOCKET)",
          "[e2e][systemd]") {
  TempDir dir;
  const std::string root = fs::path(dir.write("www/index.html", "x")).parent_path().string();
  const std::string path = dir.path() + "/notify";
  Fd notify = notify_socket(path);
  Spawnd s({"--root", root}, {{"NOTIFY_SOCKET", path}});
  const std::string ready = next_datagram(notify, 5'000);
  CHECK(ready == "READY=1\nSTATUS=listening on http://127.0.0.1:" + std::to_string(s.port()));
  CHECK(get(s.port(), "/").status == 200);
  CHECK(next_datagram(notify, 0).empty());  // nothing per request
  check_clean_end(s);
  CHECK(next_datagram(notify, 1'000) == "STOPPING=1\nSTATUS=shutting down: finishing in-flight responses");
}

TEST_CASE("the systemd units: systemd-analyze verify finds nothing to report", "[e2e][systemd]") {
  require_executable("/usr/bin/systemd-analyze", "systemd");
  TempDir dir;
  // ExecStart= must name an executable that exists: the built spawnd stands in for /usr/bin/spawnd.
  const std::string units = std::string(SPAWND_SOURCE_DIR) + "/packaging/systemd/";
  std::string service = read_file(units + "spawnd.service");
  REQUIRE(service.find("ExecStart=/usr/bin/spawnd ") != std::string::npos);
  service = std::regex_replace(service, std::regex("/usr/bin/spawnd"), SPAWND_BINARY);
  const std::string service_path = dir.write("spawnd.service", service);
  const std::string socket_path = dir.write("spawnd.socket", read_file(units + "spawnd.socket"));
  const std::string https_path = dir.write("spawnd-https.socket", read_file(units + "spawnd-https.socket"));
  // --man=no: Documentation=man:spawnd(1) is checked by the packaging test, where the man page is installed.
  ExitResult r = run_command(
      {"/usr/bin/systemd-analyze", "verify", "--man=no", service_path, socket_path, https_path}, 30'000);
  INFO(r.stdout_text << r.stderr_text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  // verify exits 0 even for an unknown key or a bad value ("ignoring"): any output at all is a finding.
  CHECK(r.stdout_text.empty());
  CHECK(r.stderr_text.empty());
  CHECK(service.find("Type=notify") != std::string::npos);
  CHECK(service.find("NoNewPrivileges=yes") != std::string::npos);
  CHECK(service.find("ProtectSystem=strict") != std::string::npos);
  // The names spawnd tells the sockets apart by, and the HTTPS socket starts the same service.
  CHECK(read_file(socket_path).find("\nFileDescriptorName=http\n") != std::string::npos);
  CHECK(read_file(https_path).find("\nFileDescriptorName=https\n") != std::string::npos);
  CHECK(read_file(https_path).find("\nService=spawnd.service\n") != std::string::npos);
}
