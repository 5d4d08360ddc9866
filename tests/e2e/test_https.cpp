// HTTPS end to end (server/tls.h): a real spawnd with --tls-listen beside its plain listener, certificates made at
// test time with the openssl CLI (a root CA, an intermediate, and leaf certificates served as full chains), and real
// clients: curl, `openssl s_client`, and a small blocking OpenSSL client of the test's own for what needs one
// connection held open across a reload. TLS 1.3 and 1.2 handshakes (and nothing older), ALPN, large bodies both
// ways byte-exact, a client stalling mid-handshake cut off by the header timeout, and the start-up errors.
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "pki.h"

using namespace spawnd::e2e;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// curl with the test CA, -sS; `args` after. Its stdout, stderr and status.
ExitResult curl(const Pki& pki, std::vector<std::string> args, int timeout_ms = 30000) {
  std::vector<std::string> argv{"curl", "-sS", "--cacert", pki.ca()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout_ms);
}

std::string https_url(std::uint16_t port, const std::string& target, const std::string& host = "localhost") {
  return "https://" + host + ":" + std::to_string(port) + target;
}

// curl --resolve HOST:PORT:127.0.0.1, so that a name reaches the test server (and is sent as SNI).
std::string resolve(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port) + ":127.0.0.1";
}

// The value of the CGI meta-variable `name` in the env handler's HTML table, "" if it is not there.
std::string meta(const std::string& page, const std::string& name) {
  const std::string open = "<tr><th>" + name + "</th><td>";
  const auto at = page.find(open);
  if (at == std::string::npos) return "";
  const auto from = at + open.size();
  return page.substr(from, page.find("</td>", from) - from);
}

// `openssl s_client` to 127.0.0.1:port with the test CA and `args`, its stdin /dev/null: the handshake, then EOF.
ExitResult s_client(const Pki& pki, std::uint16_t port, std::vector<std::string> args) {
  std::vector<std::string> argv{"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-CAfile",
                                pki.ca(), "-verify_return_error"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, 20000);
}

// One request to 127.0.0.1:port by `openssl s_client` over TLS `version` ("1_3", "1_2"), resuming the session saved
// in `sess_in` (if not empty) and saving the session it ends with to `sess_out`. The request asks for a close and
// s_client reads the whole response, so it has read the NewSessionTicket messages a TLS 1.3 server sends after the
// handshake. Returns s_client's stdout: "New, TLSv1.3, ..." for a full handshake, "Reused, TLSv1.3, ..." for a
// resumption.
std::string s_client_session(const Pki& pki, std::uint16_t port, const std::string& version,
                             const std::string& sess_in, const std::string& sess_out) {
  std::string command = "printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                        "openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile " + pki.ca() +
                        " -verify_return_error -ign_eof -tls" + version + " -sess_out " + sess_out;
  if (!sess_in.empty()) command += " -sess_in " + sess_in;
  const ExitResult r = run_command({"sh", "-c", command}, 20000);
  INFO(r.stderr_text);
  CHECK(exit_code(r) == 0);
  CHECK_THAT(r.stdout_text, Catch::Contains("HTTP/1.1 200 OK"));
  return r.stdout_text;
}

// The name of the key that sealed the session ticket s_client ended with, from its stdout (the last "TLS session
// ticket:" it printed, which also shows a ticket that renewed a resumed session): the ticket's first 16 bytes (RFC
// 5077 §4), as s_client prints them ("21 ef 61 0a 9f 86 3c e2-72 d8 ..."); "" if it printed none.
std::string ticket_key_name(const std::string& s_client_out) {
  static const std::string kTicket = "TLS session ticket:\n    0000 - ";
  const auto at = s_client_out.rfind(kTicket);
  if (at == std::string::npos) return "";
  return s_client_out.substr(at + kTicket.size(), 47);  // 16 bytes: "xx " × 7, "xx-", "xx " × 7, "xx"
}

// A blocking TLS client over one connection, verifying the server against the test CA: for a connection held
// across a reload. Each call bounded by the socket's 10 s timeouts.
class TlsClient {
 public:
  TlsClient(const Pki& pki, std::uint16_t port, const std::string& server_name = "localhost")
      : fd_(connect_to(port, 10000)) {
    timeval tv{10, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    REQUIRE(ctx_);
    REQUIRE(SSL_CTX_load_verify_locations(ctx_.get(), pki.ca().c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_.get());
    // SSL_set_tlsext_host_name() spelled out: the macro's C cast trips -Wold-style-cast.
    SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(server_name.c_str()));
    SSL_set1_host(ssl_.get(), server_name.c_str());
    const int ret = SSL_connect(ssl_.get());
    INFO("SSL_connect: " << ERR_error_string(ERR_get_error(), nullptr));
    REQUIRE(ret == 1);
  }
  // The server certificate's subject, "/CN=localhost/O=first".
  [[nodiscard]] std::string subject() const {
    X509* cert = SSL_get1_peer_certificate(ssl_.get());
    if (cert == nullptr) return "";
    char buf[256];
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
    X509_free(cert);
    return buf;
  }
  // GET `target` on the kept-alive connection: the status, and the body (Content-Length framed).
  std::pair<int, std::string> get(const std::string& target) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (SSL_write(ssl_.get(), req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size())) return {0, ""};
    std::string in;
    std::size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos)
      if (!read_more(in)) return {0, ""};
    const int status = std::stoi(in.substr(9, 3));
    const auto cl = in.find("Content-Length: ");
    const std::size_t length = cl < head_end ? std::stoul(in.substr(cl + 16)) : 0;
    while (in.size() < head_end + 4 + length)
      if (!read_more(in)) return {0, ""};
    return {status, in.substr(head_end + 4, length)};
  }

 private:
  bool read_more(std::string& in) {
    char buf[16384];
    const int n = SSL_read(ssl_.get(), buf, sizeof buf);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  struct CtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
  };
  struct SslFree {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
  };
  spawnd::Fd fd_;
  std::unique_ptr<SSL_CTX, CtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;
};

// `n` random bytes (not compressible, not text).
std::string random_bytes(std::size_t n) {
  std::mt19937_64 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::vector<std::string> tls_args(const Pki::Leaf& leaf, const std::string& root, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--root", root, "--tls-listen", "127.0.0.1:0", "--tls-cert", leaf.cert,
                                "--tls-key", leaf.key};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

TEST_CASE("HTTPS: TLS 1.3 and TLS 1.2 handshakes with curl and openssl s_client with ALPN http/1.1 and nothing older",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "hello over TLS\n");
  Spawnd s(tls_args(leaf, www.path()));
  REQUIRE(s.tls_port() != 0);
  // The start-up log says whether the kernel offers TLS offload (its tls module: /proc/net/tls_stat).
  CHECK_THAT(s.stderr_text(), Catch::Contains(fs::exists("/proc/net/tls_stat")
                                                  ? "kernel TLS available: static files over HTTPS go out with sendfile"
                                                  : "kernel TLS not available (no kernel tls module)"));

  // curl's default: TLS 1.3, offering h2 and http/1.1 by ALPN; the server picks http/1.1.
  ExitResult r = curl(pki, {"-v", https_url(s.tls_port(), "/index.html")});
  INFO(r.stderr_text);
  CHECK(exit_code(r) == 0);
  CHECK(r.stdout_text == "hello over TLS\n");
  CHECK_THAT(r.stderr_text, Catch::Contains("SSL connection using TLSv1.3"));
  CHECK_THAT(r.stderr_text, Catch::Contains("ALPN: server accepted http/1.1"));

  r = curl(pki, {"-v", "--tlsv1.2", "--tls-max", "1.2", https_url(s.tls_port(), "/index.html")});
  CHECK(exit_code(r) == 0);
  CHECK(r.stdout_text == "hello over TLS\n");
  CHECK_THAT(r.stderr_text, Catch::Contains("SSL connection using TLSv1.2 / ECDHE-ECDSA-"));

  r = s_client(pki, s.tls_port(), {"-tls1_3", "-alpn", "http/1.1", "-servername", "localhost"});
  CHECK(exit_code(r) == 0);
  CHECK_THAT(r.stdout_text, Catch::Contains("New, TLSv1.3"));
  CHECK_THAT(r.stdout_text, Catch::Contains("ALPN protocol: http/1.1"));
  CHECK_THAT(r.stdout_text, Catch::Contains("Verify return code: 0 (ok)"));
  r = s_client(pki, s.tls_port(), {"-tls1_2", "-servername", "localhost"});
  CHECK(exit_code(r) == 0);
  CHECK_THAT(r.stdout_text, Catch::Contains("New, TLSv1.2"));
  // TLS 1.1 and a TLS 1.2 suite outside Mozilla's intermediate list (no forward secrecy) are refused.
  CHECK(exit_code(s_client(pki, s.tls_port(), {"-tls1_1", "-cipher", "ALL:@SECLEVEL=0"})) != 0);
  CHECK(exit_code(s_client(pki, s.tls_port(), {"-tls1_2", "-cipher", "AES128-SHA256"})) != 0);

  // The plain listener still serves, side by side.
  CHECK(get(s.port(), "/index.html").body == "hello over TLS\n");
  check_clean_end(s);
}

TEST_CASE("HTTPS: a session ticket resumes for one key rotation and is renewed, and not after two rotations",
          "[e2e][https][tickets]") {
  const std::string version = GENERATE("1_3", "1_2");
  INFO("TLS " << version);
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "x");
  // Rotations every 1.5 s, seen by the test as the key name of fresh tickets changing (no guess at the timer's
  // phase): a ticket is resumed right after the first rotation since it was issued, well within the next one.
  Spawnd s(tls_args(leaf, www.path(), {"--tls-ticket-key-rotation", "1.5"}));
  CHECK_THAT(s.stderr_text(), Catch::Contains("TLS: session tickets: a new key every 1.5 s"));
  const std::string old_ticket = pki.path("old.pem");
  const std::string scratch = pki.path("scratch.pem");
  std::string out = s_client_session(pki, s.tls_port(), version, "", old_ticket);
  CHECK_THAT(out, Catch::Contains("New, TLSv1."));
  const std::string first_key = ticket_key_name(out);
  REQUIRE(first_key.size() == 47);
  // Resumed at once, with the key that sealed it.
  CHECK_THAT(s_client_session(pki, s.tls_port(), version, old_ticket, scratch), Catch::Contains("Reused, TLSv1."));

  // The next rotation: fresh tickets get a new key; the old ticket still resumes, and the client gets a new ticket
  // sealed with the new key (the callback's 2: renew).
  std::string current_key;
  REQUIRE(wait_until(
      [&] {
        current_key = ticket_key_name(s_client_session(pki, s.tls_port(), version, "", scratch));
        return current_key != first_key;
      },
      std::chrono::milliseconds(5000)));
  out = s_client_session(pki, s.tls_port(), version, old_ticket, scratch);
  CHECK_THAT(out, Catch::Contains("Reused, TLSv1."));
  CHECK(ticket_key_name(out) == current_key);

  // One more rotation: the old ticket's key is gone (wiped), so a full handshake.
  REQUIRE(wait_until(
      [&] { return ticket_key_name(s_client_session(pki, s.tls_port(), version, "", scratch)) != current_key; },
      std::chrono::milliseconds(5000)));
  CHECK_THAT(s_client_session(pki, s.tls_port(), version, old_ticket, scratch), Catch::Contains("New, TLSv1."));
  check_clean_end(s);
}

TEST_CASE("HTTPS: a session ticket still resumes after SIGHUP reloads the certificates", "[e2e][https][tickets]") {
  const std::string version = GENERATE("1_3", "1_2");
  INFO("TLS " << version);
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir dir;
  dir.write("www/index.html", "x");
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\ntls-cert = \"" + leaf.cert + "\"\ntls-key = \"" +
                               leaf.key + "\"\n");
  Spawnd s({"--config", dir.path() + "/spawnd.toml", "--tls-listen", "127.0.0.1:0"});
  const std::string ticket = pki.path("ticket.pem");
  CHECK_THAT(s_client_session(pki, s.tls_port(), version, "", ticket), Catch::Contains("New, TLSv1."));
  REQUIRE(hang_up_and_wait(s, 1));
  CHECK_THAT(s.stderr_text(), Catch::Contains("reload: configuration 2"));
  CHECK_THAT(s_client_session(pki, s.tls_port(), version, ticket, pki.path("after.pem")),
             Catch::Contains("Reused, TLSv1."));
  check_clean_end(s);
}

TEST_CASE("HTTPS: --tls-ticket-key-rotation 0 sends no session ticket and TLS 1.2 resumes by session ID only",
          "[e2e][https][tickets]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "x");
  Spawnd s(tls_args(leaf, www.path(), {"--tls-ticket-key-rotation", "0"}));
  CHECK_THAT(s.stderr_text(), Catch::Contains("TLS: no session tickets (--tls-ticket-key-rotation 0)"));
  // TLS 1.3: no NewSessionTicket at all, so s_client has no session to save, and no resumption.
  const std::string tls13 = pki.path("tls13.pem");
  const std::string out = s_client_session(pki, s.tls_port(), "1_3", "", tls13);
  CHECK_THAT(out, Catch::Contains("New, TLSv1.3"));
  CHECK_THAT(out, !Catch::Contains("TLS session ticket"));
  CHECK_FALSE(std::filesystem::exists(tls13));
  // TLS 1.2: a session ID and no ticket; the session cache resumes it.
  const std::string tls12 = pki.path("tls12.pem");
  CHECK_THAT(s_client_session(pki, s.tls_port(), "1_2", "", tls12), !Catch::Contains("TLS session ticket"));
  CHECK_THAT(s_client_session(pki, s.tls_port(), "1_2", tls12, pki.path("again.pem")),
             Catch::Contains("Reused, TLSv1.2"));
  check_clean_end(s);
}

TEST_CASE("HTTPS: a large download and a large POST go through TLS byte-exact", "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  const std::string big = random_bytes(6 * 1024 * 1024 + 12345);
  www.write("big.bin", big);
  www.write("cgi-bin/echo.py", read_file(kCgiDir + "/echo.py"), true);
  Spawnd s(tls_args(leaf, www.path(), {"--cgi-bin", www.path() + "/cgi-bin", "--quiet"}));

  const std::string got = www.path() + "/got.bin";
  ExitResult r = curl(pki, {"-o", got, https_url(s.tls_port(), "/big.bin")});
  INFO(r.stderr_text);
  CHECK(exit_code(r) == 0);
  CHECK(read_file(got) == big);
  // A range of it too: the file is sent from an offset.
  r = curl(pki, {"-r", "1000000-2999999", https_url(s.tls_port(), "/big.bin")});
  CHECK(r.stdout_text == big.substr(1000000, 2000000));

  const std::string upload = random_bytes(5 * 1024 * 1024 + 777);
  www.write("upload.bin", upload);
  r = curl(pki, {"--data-binary", "@" + www.path() + "/upload.bin", "-H", "Content-Type: application/octet-stream",
                 "-o", got, https_url(s.tls_port(), "/cgi-bin/echo.py")});
  CHECK(exit_code(r) == 0);
  CHECK(read_file(got) == upload);
  check_clean_end(s);
}

TEST_CASE("HTTPS: a client that stalls mid-handshake is closed after the header timeout while others are served",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "served\n");
  Spawnd s(tls_args(leaf, www.path(), {"--header-timeout", "1"}));
  // The first bytes of a ClientHello record header, then nothing; and a client that sends nothing at all.
  spawnd::Fd staller = connect_to(s.tls_port());
  REQUIRE(send_all(staller, std::string("\x16\x03\x01\x02\x00\x01", 6)));
  spawnd::Fd silent = connect_to(s.tls_port());
  const auto start = std::chrono::steady_clock::now();
  ExitResult r = curl(pki, {https_url(s.tls_port(), "/index.html")});
  CHECK(r.stdout_text == "served\n");
  CHECK(wait_closed(staller, 5000));
  CHECK(wait_closed(silent, 5000));
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 800ms);
  CHECK(waited < 4s);
  check_clean_end(s);
}

TEST_CASE("HTTPS: a plain HTTP request to the TLS port gets 400 in plain HTTP saying so, then the close",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "served\n");
  const std::string access = www.path() + "/access.log";
  Spawnd s(tls_args(leaf, www.path(), {"--access-log", access}));
  for (const std::string raw : {"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"}) {
    INFO(raw);
    spawnd::Fd c = connect_to(s.tls_port());
    REQUIRE(send_all(c, raw));
    std::string leftover;
    const HttpResponse r = read_response(c, leftover);
    CHECK(r.status_line == "HTTP/1.1 400 Bad Request");
    CHECK(r.body == "400 Bad Request: The plain HTTP request was sent to HTTPS port\n");
    CHECK(r.field("Connection") == std::optional<std::string>("close"));
    CHECK(r.field("Content-Type") == std::optional<std::string>("text/plain; charset=utf-8"));
    CHECK_FALSE(r.field("Strict-Transport-Security"));
    CHECK(wait_closed(c, 5000));
  }
  // The listener still speaks TLS to TLS clients.
  ExitResult r = curl(pki, {https_url(s.tls_port(), "/index.html")});
  CHECK(r.stdout_text == "served\n");
  // Logged as the 400s of plain requests (no TLS version at the end), then curl's request over TLS.
  REQUIRE(wait_until(
      [&] {
        const std::string log = read_file(access);
        return std::count(log.begin(), log.end(), '\n') >= 3;
      },
      5s));
  const std::string log = read_file(access);
  CHECK(std::count(log.begin(), log.end(), '\n') == 3);
  CHECK_THAT(log, Catch::Contains("\"-\" 400 63 "));
  check_clean_end(s);
}

TEST_CASE("HTTPS: --tls-ocsp-response is stapled for clients that ask, re-read on SIGHUP, and a wrong one is refused",
          "[e2e][https][ocsp]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  const Pki::Leaf other = pki.issue("other", {"localhost"}, "other");
  const std::string good = pki.ocsp_response("server", false);
  const std::string revoked = pki.ocsp_response("server", true);
  TempDir dir;
  dir.write("www/index.html", "x");
  // The file a cron job would refresh with `openssl ocsp -respout`.
  const std::string stapled = dir.write("server.ocsp", read_file(good));
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\ntls-cert = \"" + leaf.cert + "\"\ntls-key = \"" +
                               leaf.key + "\"\ntls-ocsp-response = \"" + stapled + "\"\n");
  Spawnd s({"--config", dir.path() + "/spawnd.toml", "--tls-listen", "127.0.0.1:0"});
  CHECK_THAT(s.stderr_text(), Catch::Contains("TLS: tls-ocsp-response " + stapled + ": stapled (certificate status good)"));
  ExitResult r = s_client(pki, s.tls_port(), {"-status", "-servername", "localhost"});
  CHECK(exit_code(r) == 0);
  CHECK_THAT(r.stdout_text, Catch::Contains("OCSP Response Status: successful (0x0)"));
  CHECK_THAT(r.stdout_text, Catch::Contains("Cert Status: good"));
  // A client that does not ask gets none.
  CHECK_THAT(s_client(pki, s.tls_port(), {}).stdout_text, !Catch::Contains("OCSP Response Status"));

  dir.write("server.ocsp", read_file(revoked));
  REQUIRE(hang_up_and_wait(s, 1));
  r = s_client(pki, s.tls_port(), {"-status", "-servername", "localhost"});
  CHECK_THAT(r.stdout_text, Catch::Contains("Cert Status: revoked"));
  check_clean_end(s);

  // A [[site]] with a certificate of its own staples its own response, and never inherits the top level's (about
  // another certificate): site a has none, site b its own.
  const Pki::Leaf a = pki.issue("a", {"a.test"}, "site-a");
  const Pki::Leaf b = pki.issue("b", {"b.test"}, "site-b");
  const std::string b_response = pki.ocsp_response("b", false);
  dir.write("sites.toml", "root = \"" + dir.path() + "/www\"\ntls-cert = \"" + leaf.cert + "\"\ntls-key = \"" +
                              leaf.key + "\"\ntls-ocsp-response = \"" + good + "\"\n[[site]]\nhosts = [\"a.test\"]\n" +
                              "root = \"" + dir.path() + "/www\"\ntls-cert = \"" + a.cert + "\"\ntls-key = \"" + a.key +
                              "\"\n[[site]]\nhosts = [\"b.test\"]\nroot = \"" + dir.path() + "/www\"\ntls-cert = \"" +
                              b.cert + "\"\ntls-key = \"" + b.key + "\"\ntls-ocsp-response = \"" + b_response + "\"\n");
  Spawnd sites({"--config", dir.path() + "/sites.toml", "--tls-listen", "127.0.0.1:0"});
  r = s_client(pki, sites.tls_port(), {"-status", "-servername", "a.test"});
  CHECK_THAT(r.stdout_text, Catch::Contains("subject=CN = a.test, O = site-a"));
  CHECK_THAT(r.stdout_text, Catch::Contains("OCSP response: no response sent"));
  r = s_client(pki, sites.tls_port(), {"-status", "-servername", "b.test"});
  CHECK_THAT(r.stdout_text, Catch::Contains("subject=CN = b.test, O = site-b"));
  CHECK_THAT(r.stdout_text, Catch::Contains("Cert Status: good"));
  r = s_client(pki, sites.tls_port(), {"-status", "-servername", "localhost"});
  CHECK_THAT(r.stdout_text, Catch::Contains("Cert Status: good"));
  check_clean_end(sites);

  // Refused at start-up: not an OCSP response, and a response about another certificate.
  TempDir www;
  const std::string junk = www.write("junk.ocsp", "not DER");
  r = run_spawnd({"--root", www.path(), "--tls-listen", "127.0.0.1:0", "--tls-cert", leaf.cert, "--tls-key", leaf.key,
                  "--tls-ocsp-response", junk, "--check-config"});
  CHECK(exit_code(r) == 2);
  CHECK_THAT(r.stderr_text, Catch::Contains("tls-ocsp-response " + junk + ": "));
  r = run_spawnd({"--root", www.path(), "--tls-listen", "127.0.0.1:0", "--tls-cert", other.cert, "--tls-key",
                  other.key, "--tls-ocsp-response", good, "--check-config"});
  CHECK(exit_code(r) == 2);
  CHECK_THAT(r.stderr_text,
             Catch::Contains("tls-ocsp-response " + good + ": not a response about the certificate it goes with"));
}

TEST_CASE("HTTPS: start-up refuses a missing key or a key of another certificate or --redirect-https alone",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  const Pki::Leaf other = pki.issue("other", {"localhost"}, "other");
  TempDir www;
  ExitResult r = run_spawnd({"--root", www.path(), "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
                             "--tls-cert", leaf.cert});
  CHECK(exit_code(r) == 2);
  CHECK_THAT(r.stderr_text, Catch::Contains("needs tls-cert and tls-key"));
  r = run_spawnd({"--root", www.path(), "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-cert",
                  leaf.cert, "--tls-key", other.key});
  CHECK(exit_code(r) == 2);
  CHECK_THAT(r.stderr_text, Catch::Contains("tls-key " + other.key + " does not match tls-cert " + leaf.cert));
  r = run_spawnd({"--root", www.path(), "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-cert",
                  www.path() + "/missing.pem", "--tls-key", leaf.key});
  CHECK(exit_code(r) == 2);
  CHECK_THAT(r.stderr_text, Catch::Contains("tls-cert " + www.path() + "/missing.pem: "));
  r = run_spawnd({"--root", www.path(), "--listen", "127.0.0.1:0", "--redirect-https"});
  CHECK(exit_code(r) == 2);
  CHECK_THAT(r.stderr_text, Catch::Contains("redirect-https needs tls-listen"));
  // --check-config loads the certificates as start-up would.
  r = run_spawnd({"--root", www.path(), "--tls-listen", "127.0.0.1:0", "--tls-cert", leaf.cert, "--tls-key",
                  other.key, "--check-config"});
  CHECK(exit_code(r) == 2);
  r = run_spawnd({"--root", www.path(), "--tls-listen", "127.0.0.1:0", "--tls-cert", leaf.cert, "--tls-key", leaf.key,
                  "--check-config"});
  CHECK(exit_code(r) == 0);
}

TEST_CASE("HTTPS: every mode's handler sees HTTPS=on and REQUEST_SCHEME=https and the TLS port and the access log marks TLS",
          "[e2e][https]") {
  const std::string mode = GENERATE("cgi", "fork", "fastcgi", "inproc");
  INFO("--mode " << mode);
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  const std::string access = www.path() + "/access.log";
  Spawnd s(tls_args(leaf, www.path(), {"--cgi-bin", SPAWND_CGI_BIN_DIR, "--mode", mode, "--workers", "1",
                                       "--fork-servers", "1", "--access-log", access}));
  ExitResult r = curl(pki, {https_url(s.tls_port(), "/cgi-bin/env")});
  INFO(r.stderr_text);
  CHECK(meta(r.stdout_text, "HTTPS") == "on");
  CHECK(meta(r.stdout_text, "REQUEST_SCHEME") == "https");
  CHECK(meta(r.stdout_text, "SERVER_PORT") == std::to_string(s.tls_port()));
  const HttpResponse plain = get(s.port(), "/cgi-bin/env");
  CHECK(meta(plain.body, "HTTPS").empty());
  CHECK(meta(plain.body, "REQUEST_SCHEME") == "http");
  CHECK(meta(plain.body, "SERVER_PORT") == std::to_string(s.port()));
  // Two lines: the request over HTTPS (curl's) ends with its TLS version, the plain one does not.
  REQUIRE(wait_until(
      [&] {
        const std::string log = read_file(access);
        return std::count(log.begin(), log.end(), '\n') >= 2;
      },
      5s));
  std::istringstream lines(read_file(access));
  std::string line;
  while (std::getline(lines, line)) {
    INFO(line);
    CHECK(line.ends_with("\" TLSv1.3") == (line.find("\"curl/") != std::string::npos));
  }
  check_clean_end(s);
}

TEST_CASE("HTTPS: SNI picks each site's certificate (hosts in any case, with or without a trailing dot) and an "
          "unknown name or none gets the top-level one",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf top = pki.issue("top", {"localhost"}, "top");
  const Pki::Leaf a = pki.issue("a", {"a.test", "www.a.test"}, "site-a");
  const Pki::Leaf b = pki.issue("b", {"b.test"}, "site-b");
  TempDir dir;
  dir.write("top/index.html", "top\n");
  dir.write("a/index.html", "site a\n");
  dir.write("b/index.html", "site b\n");
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/top\"\ntls-cert = \"" + top.cert + "\"\ntls-key = \"" + top.key +
                               "\"\n[[site]]\nhosts = [\"a.test\", \"www.a.test\"]\nroot = \"" + dir.path() +
                               "/a\"\ntls-cert = \"" + a.cert + "\"\ntls-key = \"" + a.key +
                               "\"\n[[site]]\nhosts = [\"B.Test.\"]\n" +
                               "root = \"" + dir.path() + "/b\"\ntls-cert = \"" + b.cert + "\"\ntls-key = \"" + b.key + "\"\n");
  Spawnd s({"--config", dir.path() + "/spawnd.toml", "--tls-listen", "127.0.0.1:0"});
  const std::uint16_t port = s.tls_port();
  // curl verifies each name against the certificate it gets: the right one per site, or the request fails.
  for (const auto& [host, body] : {std::pair<std::string, std::string>{"a.test", "site a\n"},
                                   {"www.a.test", "site a\n"}, {"b.test", "site b\n"}, {"localhost", "top\n"}}) {
    INFO(host);
    ExitResult r = curl(pki, {"--resolve", resolve(host, port), https_url(port, "/", host)});
    INFO(r.stderr_text);
    CHECK(exit_code(r) == 0);
    CHECK(r.stdout_text == body);
  }
  CHECK(TlsClient(pki, port, "a.test").subject() == "/CN=a.test/O=site-a");
  CHECK(TlsClient(pki, port, "B.TEST").subject() == "/CN=b.test/O=site-b");
  // Site b's host is written "B.Test." (upper case, a trailing dot): it is the host b.test, by Host and by SNI.
  CHECK_THAT(s_client(pki, port, {"-servername", "b.test."}).stdout_text,
             Catch::Contains("subject=CN = b.test, O = site-b"));
  // An unknown name, or no SNI at all (s_client -noservername): the top-level certificate.
  ExitResult r = s_client(pki, port, {"-servername", "unknown.test"});
  CHECK_THAT(r.stdout_text, Catch::Contains("subject=CN = localhost, O = top"));
  r = s_client(pki, port, {"-noservername"});
  CHECK_THAT(r.stdout_text, Catch::Contains("subject=CN = localhost, O = top"));
  check_clean_end(s);
}

TEST_CASE("HTTPS: --redirect-https answers 308 to https:// except ACME challenges and --hsts is sent only over HTTPS",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "home\n");
  www.write(".well-known/acme-challenge/token-123", "token-123.thumbprint");
  Spawnd s(tls_args(leaf, www.path(), {"--redirect-https", "--hsts", "31536000"}));
  HttpResponse r = request(s.port(), "GET /a/b?c=d HTTP/1.1\r\nHost: Example.ORG:8080\r\nConnection: close\r\n\r\n");
  CHECK(r.status == 308);
  CHECK(r.field("Location") == std::optional<std::string>("https://example.org:" + std::to_string(s.tls_port()) +
                                                          "/a/b?c=d"));
  CHECK_FALSE(r.field("Strict-Transport-Security"));
  // A POST is redirected as it is (308 keeps the method), its body read and dropped: the connection stays usable.
  spawnd::Fd c = connect_to(s.port());
  REQUIRE(send_all(c, "POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
                      "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string leftover;
  CHECK(read_response(c, leftover).status == 308);
  CHECK(read_response(c, leftover).status == 308);
  // "OPTIONS *" asks about the server, not a resource: answered on the plain port too, without HSTS.
  r = request(s.port(), "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  CHECK(r.status == 200);
  CHECK(r.field("Allow"));
  CHECK_FALSE(r.field("Location"));
  CHECK_FALSE(r.field("Strict-Transport-Security"));
  // certbot --webroot's HTTP-01 challenge (RFC 8555 §8.3) is served over plain HTTP.
  r = get(s.port(), "/.well-known/acme-challenge/token-123");
  CHECK(r.status == 200);
  CHECK(r.body == "token-123.thumbprint");
  // Following the redirect lands on HTTPS, with Strict-Transport-Security.
  ExitResult followed = curl(pki, {"-L", "-D", "-", "http://localhost:" + std::to_string(s.port()) + "/index.html"});
  INFO(followed.stderr_text);
  CHECK_THAT(followed.stdout_text, Catch::Contains("HTTP/1.1 308 Permanent Redirect"));
  CHECK_THAT(followed.stdout_text, Catch::Contains("Strict-Transport-Security: max-age=31536000\r\n"));
  CHECK_THAT(followed.stdout_text, Catch::EndsWith("home\n"));
  check_clean_end(s);
}

TEST_CASE("HTTPS: --redirect-https over IPv6 puts the address in brackets in Location, with or without Host",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  Spawnd s({"--root", www.path(), "--listen", "[::1]:0", "--tls-listen", "[::1]:0", "--tls-cert", leaf.cert,
            "--tls-key", leaf.key, "--redirect-https", "--quiet"});
  const std::string tls_port = std::to_string(s.tls_port());
  auto location_for = [&](const std::string& raw) {
    spawnd::Fd c = connect_to("::1", s.port());
    REQUIRE(send_all(c, raw));
    const HttpResponse r = read_response(c);
    CHECK(r.status == 308);
    return r.field("Location").value_or("");
  };
  // HTTP/1.0 without Host: the address the request came to.
  CHECK(location_for("GET /a?b HTTP/1.0\r\n\r\n") == "https://[::1]:" + tls_port + "/a?b");
  // The Host field's IPv6 literal, its brackets kept and its port replaced.
  CHECK(location_for("GET /a HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n") ==
        "https://[::1]:" + tls_port + "/a");
  CHECK(location_for("GET /a HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n") ==
        "https://[::1]:" + tls_port + "/a");
  check_clean_end(s);
}

TEST_CASE("HTTPS: --hsts puts one Strict-Transport-Security field on every kind of response, and a handler's own "
          "stands",
          "[e2e][https]") {
  Pki pki;
  const Pki::Leaf leaf = pki.issue("server", {"localhost"}, "first");
  TempDir www;
  www.write("index.html", "home\n");
  TempDir cgi;
  cgi.write("plain.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nplain\\n'\n", true);
  cgi.write("own.sh",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nStrict-Transport-Security: max-age=60\\r\\n\\r\\nown\\n'\n",
            true);
  Spawnd s(tls_args(leaf, www.path(), {"--hsts", "31536000", "--cgi-bin", cgi.path(), "--quiet"}));
  // The response head as curl received it, byte for byte.
  auto head_of = [&](const std::string& target) {
    const ExitResult r = curl(pki, {"-D", "-", "-o", "/dev/null", https_url(s.tls_port(), target)});
    INFO(r.stderr_text);
    CHECK(exit_code(r) == 0);
    return r.stdout_text;
  };
  auto count = [](const std::string& head) {
    std::size_t n = 0;
    for (auto at = head.find("Strict-Transport-Security:"); at != std::string::npos;
         at = head.find("Strict-Transport-Security:", at + 1))
      ++n;
    return n;
  };
  const std::string field = "Strict-Transport-Security: max-age=31536000\r\n";
  // A cached static file's head, encoded once per file: the field comes last.
  std::string head = head_of("/index.html");
  CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 200 OK\r\n") && Catch::EndsWith(field + "\r\n"));
  CHECK(count(head) == 1);
  // Every other head: the field after the response's own, before the framing.
  head = head_of("/missing.html");
  CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 404 Not Found\r\n") && Catch::Contains(field + "Content-Length: "));
  CHECK(count(head) == 1);
  head = head_of("/cgi-bin/plain.sh");
  CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 200 OK\r\n") &&
                       Catch::Contains("Content-Type: text/plain\r\n" + field + "Transfer-Encoding: chunked\r\n"));
  CHECK(count(head) == 1);
  // A handler that sets the field itself keeps its value.
  head = head_of("/cgi-bin/own.sh");
  CHECK_THAT(head, Catch::Contains("Strict-Transport-Security: max-age=60\r\n"));
  CHECK(count(head) == 1);
  check_clean_end(s);
}

TEST_CASE("HTTPS: SIGHUP picks up a renewed certificate while an older connection keeps working and a broken one is "
          "refused while the running one stays",
          "[e2e][https][reload]") {
  Pki pki;
  const Pki::Leaf first = pki.issue("first", {"localhost"}, "first");
  const Pki::Leaf renewed = pki.issue("renewed", {"localhost"}, "renewed");
  TempDir dir;
  dir.write("www/index.html", "index\n");
  // The paths the configuration names, as certbot's live/ links: a renewal changes what they hold.
  const std::string cert = dir.write("live/fullchain.pem", read_file(first.cert));
  const std::string key = dir.write("live/privkey.pem", read_file(first.key));
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\ntls-cert = \"" + cert + "\"\ntls-key = \"" + key + "\"\n");
  Spawnd s({"--config", dir.path() + "/spawnd.toml", "--tls-listen", "127.0.0.1:0"});
  TlsClient old_connection(pki, s.tls_port());
  CHECK(old_connection.subject() == "/CN=localhost/O=first");
  CHECK(old_connection.get("/index.html") == std::pair<int, std::string>(200, "index\n"));

  dir.write("live/fullchain.pem", read_file(renewed.cert));
  dir.write("live/privkey.pem", read_file(renewed.key));
  REQUIRE(hang_up_and_wait(s, 1));
  CHECK_THAT(s.stderr_text(), Catch::Contains("reload: configuration 2"));
  CHECK(TlsClient(pki, s.tls_port()).subject() == "/CN=localhost/O=renewed");
  // The connection made before the reload still works, with the certificate it was made with.
  CHECK(old_connection.get("/index.html") == std::pair<int, std::string>(200, "index\n"));
  CHECK(old_connection.subject() == "/CN=localhost/O=first");

  // A broken certificate (a truncated file), then a key that does not match: refused, logged, the renewed one stays.
  dir.write("live/fullchain.pem", read_file(renewed.cert).substr(0, 100));
  REQUIRE(hang_up_and_wait(s, 2));
  CHECK_THAT(s.stderr_text(), Catch::Contains("error: reload: tls-cert " + cert + ": "));
  CHECK_THAT(s.stderr_text(), Catch::Contains("still serving configuration 2"));
  CHECK(TlsClient(pki, s.tls_port()).subject() == "/CN=localhost/O=renewed");
  dir.write("live/fullchain.pem", read_file(first.cert));
  REQUIRE(hang_up_and_wait(s, 3));
  CHECK_THAT(s.stderr_text(), Catch::Contains("error: reload: tls-key " + key + " does not match tls-cert " + cert));
  CHECK(TlsClient(pki, s.tls_port()).subject() == "/CN=localhost/O=renewed");
  CHECK(old_connection.get("/index.html").first == 200);
  check_clean_end(s);
}
