// The configuration file end to end (server/config_file.h, server/site.h): `spawnd --config FILE` with the keys of
// the flags, the command line over the file, errors that name FILE:LINE and the key (exit 2), --check-config,
// --version, the example packaging/spawnd.toml, and [[site]] virtual hosts: chosen by Host (port ignored, any case),
// each with its own root, cgi-bin and database, the default site for any other host, and the site in the access log
// (Apache's vhost_combined).
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;
namespace fs = std::filesystem;

namespace {

// GET `target` with Host `host`, on a connection of its own.
HttpResponse get_host(std::uint16_t port, const std::string& host, const std::string& target = "/") {
  return request(port, "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
}

}  // namespace

TEST_CASE("Flags on the command line override the configuration file, a repeatable one replacing its list",
          "[e2e][config]") {
  TempDir dir;
  dir.write("a/first.html", "A-first");
  dir.write("b/first.html", "B-first");
  dir.write("b/second.html", "B-second");
  const std::string file =
      dir.write("spawnd.toml", "root = \"" + dir.path() + "/a\"\nindex = [\"first.html\"]\nhandler-timeout = 5\n");
  {
    Spawnd s({"--config", file});
    CHECK(get(s.port(), "/").body == "A-first");
    check_clean_end(s);
  }
  {
    Spawnd s({"--config", file, "--root", dir.path() + "/b"});
    CHECK(get(s.port(), "/").body == "B-first");  // root from the command line, index from the file
    check_clean_end(s);
  }
  {
    Spawnd s({"--config", file, "--root", dir.path() + "/b", "--index", "second.html"});
    CHECK(get(s.port(), "/").body == "B-second");
    check_clean_end(s);
  }
}

TEST_CASE("A bad configuration file is an error naming FILE:LINE and the key, exit status 2", "[e2e][config]") {
  TempDir dir;
  dir.write("www/index.html", "hi");
  const std::string root = "root = \"" + dir.path() + "/www\"\n";
  struct Case {
    const char* what;
    std::string text;
    std::string message;  // expected in stderr, after "spawnd.toml:"
  };
  const std::vector<Case> cases{
      {"unknown key", root + "listen = \"127.0.0.1:0\"\nbogus-key = 1\n", "3: bogus-key: unknown key"},
      {"a string where a number belongs", root + "handler-timeout = \"30\"\n", "2: handler-timeout: expected a number"},
      {"a number where a string belongs", "root = 5\n", "1: root: expected a string"},
      {"a string for a flag", root + "pass-authorization = \"yes\"\n", "2: pass-authorization: expected true or false"},
      {"a single value for a repeatable flag", root + "index = \"a.html\"\n", "2: index: expected an array of strings"},
      {"a value the validator refuses", root + "\nmax-connections = 0\n", "3: max-connections: --max-connections"},
      {"a name not among the choices", root + "mode = \"threads\"\n", "2: mode: --mode: threads not in"},
      {"a command-only option as a key", root + "config = \"other.toml\"\n", "2: config: unknown key"},
      {"a TOML syntax error", root + "index = [\n", "2:"},
      {"an unknown key in [[site]]", root + "[[site]]\nhosts = [\"a.example\"]\nroot = \"/tmp\"\ncolour = \"red\"\n",
       "5: colour: unknown key in [[site]]"},
      {"a process-wide key in [[site]]", root + "[[site]]\nhosts = [\"a.example\"]\nlisten = \"0.0.0.0:80\"\n",
       "4: listen: not a key of [[site]]"},
      {"a [[site]] without hosts", root + "[[site]]\nroot = \"/tmp\"\n", "2: [[site]]: needs hosts"},
      {"a [[site]] without root", root + "[[site]]\nhosts = [\"a.example\"]\n", "2: [[site]]: needs root"},
      {"a host with a port", root + "[[site]]\nhosts = [\"a.example:80\"]\nroot = \"/tmp\"\n", "3: hosts: expected a host name"},
      {"a host that is a dot alone", root + "[[site]]\nhosts = [\".\"]\nroot = \"/tmp\"\n",
       "3: hosts: expected a host name"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string file = dir.write("spawnd.toml", c.text);
    const ExitResult r = run_spawnd({"--config", file, "--listen", "127.0.0.1:0"});
    CHECK(exit_code(r) == 2);
    CHECK_THAT(r.stderr_text, Catch::Contains(file + ":" + c.message));
    CHECK_THAT(r.stderr_text, !Catch::Contains("listening on"));
  }
  // A missing file too.
  const ExitResult missing = run_spawnd({"--config", dir.path() + "/none.toml"});
  CHECK(exit_code(missing) == 2);
  CHECK_THAT(missing.stderr_text, Catch::Contains(dir.path() + "/none.toml"));
}

TEST_CASE("spawnd --check-config validates without serving: 0 and \"configuration ok\", or 2 and the error",
          "[e2e][config]") {
  TempDir dir;
  dir.write("www/index.html", "hi");
  dir.write("a/index.html", "a");
  const std::string good = dir.write("good.toml", "root = \"" + dir.path() + "/www\"\nlisten = \"127.0.0.1:1\"\n" +
                                                      "[[site]]\nhosts = [\"a.example\"]\nroot = \"" + dir.path() +
                                                      "/a\"\ndb = \"" + dir.path() + "/a.db\"\n");
  const ExitResult ok = run_spawnd({"--config", good, "--check-config"});
  CHECK(exit_code(ok) == 0);
  CHECK(ok.stdout_text == "configuration ok\n");
  CHECK_THAT(ok.stderr_text, !Catch::Contains("listening"));  // port 1 would need root: nothing was bound
  CHECK_FALSE(fs::exists(dir.path() + "/a.db"));               // nor any database created

  struct Case {
    const char* what;
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases{
      {"a missing root", "root = \"" + dir.path() + "/nowhere\"\n", "root: document root " + dir.path() + "/nowhere"},
      {"a missing root of a site",
       "root = \"" + dir.path() + "/www\"\n[[site]]\nhosts = [\"b.example\"]\nroot = \"" + dir.path() + "/gone\"\n",
       "root (site b.example)"},
      {"a --fastcgi-pass address that is no address",
       "root = \"" + dir.path() + "/www\"\nfastcgi-pass = [\"/php/=nowhere\"]\n", "fastcgi-pass: "},
      {"a database in a missing directory",
       "root = \"" + dir.path() + "/www\"\ndb = \"" + dir.path() + "/no/such/dir/x.db\"\n", "db: "},
      {"a bad listen address", "root = \"" + dir.path() + "/www\"\nlisten = \"no-port\"\n", "listen no-port"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string file = dir.write("bad.toml", c.text);
    const ExitResult r = run_spawnd({"--config", file, "--check-config"});
    CHECK(exit_code(r) == 2);
    CHECK_THAT(r.stderr_text, Catch::Contains(c.message));
    CHECK(r.stdout_text.empty());
  }
  // Flags alone are checked too.
  const ExitResult flags = run_spawnd({"--root", dir.path() + "/nowhere", "--check-config"});
  CHECK(exit_code(flags) == 2);
}

TEST_CASE("The example packaging/spawnd.toml passes --check-config once its directories exist", "[e2e][config]") {
  // The example names /srv/www, /var/log/spawnd and /var/lib/spawnd: they are moved under a temporary directory.
  std::string text = read_file(SPAWND_SOURCE_DIR "/packaging/spawnd.toml");
  REQUIRE_FALSE(text.empty());
  TempDir dir;
  for (const char* prefix : {"/srv/www", "/var/log/spawnd", "/var/lib/spawnd"})
    text = std::regex_replace(text, std::regex(std::string("\"") + prefix), "\"" + dir.path() + prefix);
  for (const char* sub : {"/srv/www/default/cgi-bin", "/srv/www/example.org/cgi-bin", "/srv/www/blog.example.org",
                          "/var/log/spawnd", "/var/lib/spawnd"})
    fs::create_directories(dir.path() + sub);
  const std::string file = dir.write("spawnd.toml", text);
  const ExitResult r = run_spawnd({"--config", file, "--check-config"});
  INFO(r.stderr_text);
  CHECK(exit_code(r) == 0);
  CHECK(r.stdout_text == "configuration ok\n");
}

TEST_CASE("spawnd --version prints spawnd's version and those of SQLite and llhttp and OpenSSL", "[e2e][config]") {
  const ExitResult r = run_spawnd({"--version"});
  CHECK(exit_code(r) == 0);
  CHECK(std::regex_search(r.stdout_text, std::regex(R"(^spawnd \d+\.\d+\.\d+\n)")));
  CHECK(std::regex_search(r.stdout_text, std::regex(R"(\nSQLite 3\.\d+\.\d+\n)")));
  CHECK(std::regex_search(r.stdout_text, std::regex(R"(\nllhttp \d+\.\d+\.\d+\n)")));
  CHECK(std::regex_search(r.stdout_text, std::regex(R"(\nOpenSSL 3\.\d+\.\d+\n)")));
  // --help lists --config and the site options.
  const ExitResult help = run_spawnd({"--help"});
  CHECK(exit_code(help) == 0);
  CHECK_THAT(help.stdout_text, Catch::Contains("--config FILE"));
  CHECK_THAT(help.stdout_text, Catch::Contains("Site options (also keys of a [[site]] table in --config):\n  --root"));
}

TEST_CASE("[[site]] tables: each host list gets its root, any other host the top-level site", "[e2e][config]") {
  TempDir dir;
  dir.write("default/index.html", "default site");
  dir.write("a/index.html", "site A");
  dir.write("b/index.html", "site B");
  const std::string file = dir.write(
      "spawnd.toml", "root = \"" + dir.path() + "/default\"\naccess-log = \"" + dir.path() + "/access.log\"\n" +
                         "[[site]]\nhosts = [\"a.example\", \"www.a.example\"]\nroot = \"" + dir.path() + "/a\"\n" +
                         "[[site]]\nhosts = [\"b.example\"]\nroot = \"" + dir.path() + "/b\"\n");
  Spawnd s({"--config", file});
  CHECK(get_host(s.port(), "a.example").body == "site A");
  CHECK(get_host(s.port(), "www.a.example").body == "site A");
  CHECK(get_host(s.port(), "WWW.A.Example:8080").body == "site A");  // case-insensitive, port ignored
  CHECK(get_host(s.port(), "a.example.").body == "site A");          // the absolute form of the name
  CHECK(get_host(s.port(), "b.example").body == "site B");
  CHECK(get_host(s.port(), "c.example").body == "default site");
  CHECK(get_host(s.port(), "127.0.0.1").body == "default site");
  CHECK(request(s.port(), "GET / HTTP/1.0\r\n\r\n").body == "default site");  // no Host at all
  // An absolute-form target names the site; its Host field is ignored (RFC 9112 §3.2.2).
  CHECK(request(s.port(), "GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n").body ==
        "site B");
  // A file of one site is not reachable through another.
  dir.write("b/only-b.txt", "b");
  CHECK(get_host(s.port(), "b.example", "/only-b.txt").status == 200);
  CHECK(get_host(s.port(), "a.example", "/only-b.txt").status == 404);
  check_clean_end(s);

  // The access log names the site and the port first (vhost_combined), "-" for the default site.
  const std::string log = read_file(dir.path() + "/access.log");
  const std::string port = std::to_string(s.port());
  CHECK_THAT(log, Catch::Contains("\na.example:" + port + " 127.0.0.1 - - [") ||
                      Catch::StartsWith("a.example:" + port + " 127.0.0.1 - - ["));
  CHECK_THAT(log, Catch::Contains("\nb.example:" + port + " 127.0.0.1 - - ["));
  CHECK_THAT(log, Catch::Contains("\n-:" + port + " 127.0.0.1 - - ["));
  CHECK(std::regex_search(log, std::regex("\nb\\.example:" + port +
                                          R"( 127\.0\.0\.1 - - \[[^\]]+\] "GET /only-b\.txt HTTP/1\.1" 200 1 "-" "-"\n)")));
}

TEST_CASE("[[site]] host names written with upper case or a trailing dot match as the request names them",
          "[e2e][config]") {
  TempDir dir;
  dir.write("default/index.html", "default site");
  dir.write("a/index.html", "site A");
  dir.write("b/index.html", "site B");
  const std::string sites = "[[site]]\nhosts = [\"Example.COM.\"]\nroot = \"" + dir.path() + "/a\"\n";
  const std::string file = dir.write("spawnd.toml", "root = \"" + dir.path() + "/default\"\n" + sites);
  Spawnd s({"--config", file});
  for (const char* host : {"example.com", "EXAMPLE.com.", "Example.Com:8080", "example.com.:80"}) {
    INFO(host);
    CHECK(get_host(s.port(), host).body == "site A");
  }
  CHECK(get_host(s.port(), "example.com..").body == "default site");  // one trailing dot only (RFC 1034 §3.1)

  // A reload builds its sites the same way: a name written "WWW.Example.ORG." is found as www.example.org.
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/default\"\n" + sites +
                               "[[site]]\nhosts = [\"WWW.Example.ORG.\"]\nroot = \"" + dir.path() + "/b\"\n");
  REQUIRE(hang_up_and_wait(s, 1));
  CHECK(get_host(s.port(), "www.example.org").body == "site B");
  CHECK(get_host(s.port(), "example.com.").body == "site A");
  check_clean_end(s);

  // The same host twice, however it is written, is an error (at start-up and in --check-config alike).
  const std::string twice = dir.write("twice.toml", "root = \"" + dir.path() + "/default\"\n" + sites +
                                                        "[[site]]\nhosts = [\"example.com\"]\nroot = \"" + dir.path() +
                                                        "/b\"\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--config", twice, "--check-config"},
        std::vector<std::string>{"--config", twice, "--listen", "127.0.0.1:0"}}) {
    const ExitResult r = run_spawnd(args);
    CHECK(exit_code(r) == 2);
    CHECK_THAT(r.stderr_text,
               Catch::Contains(twice + ":5: [[site]]: host example.com is a host of the [[site]] of line 2"));
  }
}

TEST_CASE("Without [[site]] tables the access log keeps the Combined Log Format", "[e2e][config]") {
  TempDir dir;
  dir.write("www/index.html", "hi");
  const std::string file = dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\naccess-log = \"" +
                                                        dir.path() + "/access.log\"\n");
  Spawnd s({"--config", file});
  CHECK(get(s.port(), "/").status == 200);
  check_clean_end(s);
  CHECK(std::regex_match(read_file(dir.path() + "/access.log"),
                         std::regex(R"(127\.0\.0\.1 - - \[[^\]]+\] "GET / HTTP/1\.1" 200 2 "-" "-"\n)")));
}

TEST_CASE("Each [[site]] runs its own cgi-bin with its own database, handlers see its name and root",
          "[e2e][config]") {
  TempDir dir;
  dir.write("a/index.html", "a");
  dir.write("b/index.html", "b");
  const std::string file = dir.write(
      "spawnd.toml", "root = \"" + dir.path() + "/a\"\ncgi-bin = \"" + dir.path() + "/a\"\n" +
                         "[[site]]\nhosts = [\"a.example\"]\nroot = \"" + dir.path() + "/a\"\ncgi-bin = \"" + kCgiDir +
                         "\"\ndb = \"" + dir.path() + "/a.db\"\n" +
                         "[[site]]\nhosts = [\"b.example\"]\nroot = \"" + dir.path() + "/b\"\ncgi-bin = \"" +
                         SPAWND_CGI_BIN_DIR + "\"\ndb = \"" + dir.path() + "/b.db\"\ncgi-prefix = \"/app/\"\n");
  Spawnd s({"--config", file});
  // Both databases exist from the start (each site's keeper created its file in WAL mode).
  CHECK(query_text(dir.path() + "/a.db", "PRAGMA journal_mode") == "wal");
  CHECK(query_text(dir.path() + "/b.db", "PRAGMA journal_mode") == "wal");

  const HttpResponse env = get_host(s.port(), "a.example:8080", "/cgi-bin/env.sh");
  REQUIRE(env.status == 200);
  const std::string lines = "\n" + env.body;  // each variable's line starts after a newline, the first one too
  CHECK_THAT(lines, Catch::Contains("\nenv:SPAWND_DB=" + dir.path() + "/a.db\n"));
  CHECK_THAT(lines, Catch::Contains("\nenv:SERVER_NAME=a.example\n"));
  CHECK_THAT(lines, Catch::Contains("\nenv:DOCUMENT_ROOT=" + fs::canonical(dir.path() + "/a").string() + "\n"));

  // Site b mounts the kv handler at its own prefix, on its own database; site a has no such program.
  const HttpResponse put = request(s.port(), "PUT /app/kv/colour HTTP/1.1\r\nHost: b.example\r\nContent-Length: 7\r\n"
                                             "Connection: close\r\n\r\n\"green\"");
  CHECK(put.status == 201);
  CHECK(get_host(s.port(), "b.example", "/app/kv/colour").body == "\"green\"");
  CHECK(get_host(s.port(), "a.example", "/app/kv/colour").status == 404);
  CHECK(get_host(s.port(), "a.example", "/cgi-bin/kv/colour").status == 404);
  CHECK(count_rows(dir.path() + "/b.db", "kv") == 1);
  check_clean_end(s);
}
