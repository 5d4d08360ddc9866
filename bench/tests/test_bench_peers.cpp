// bench/tests/test_bench_peers.cpp — the generated peer configurations: loopback only, no access log, the handler's
// database passed on (bench/peers.h).
#include <catch2/catch.hpp>

#include <string>

#include "bench/peers.h"

using namespace spawnd::bench;

namespace {

PeerSetup setup(bool is_root) {
  PeerSetup s;
  s.work_dir = "/tmp/w";
  s.docroot = "/tmp/w/www";
  s.cgi_bin = "/opt/cgi-bin";
  s.db_path = "/tmp/db/run.db";
  s.pragmas = "baseline";
  s.handler = "guestbook";
  s.port = 18080;
  s.is_root = is_root;
  return s;
}

}  // namespace

TEST_CASE("lighttpd runs the cgi-bin directory as CGI on loopback, with the database in the environment",
          "[unit][bench]") {
  const std::string c = lighttpd_config(setup(false));
  CHECK_THAT(c, Catch::Contains("server.bind = \"127.0.0.1\"\nserver.port = 18080\n"));
  CHECK_THAT(c, Catch::Contains("\"/cgi-bin/\" => \"/opt/cgi-bin/\""));
  CHECK_THAT(c, Catch::Contains("\"SPAWND_DB\" => \"/tmp/db/run.db\", \"SPAWND_PRAGMAS\" => \"baseline\""));
  // The handlers' writer backstop gets the same WAL bound as spawnd's handlers (16 MiB unless the run says).
  CHECK_THAT(c, Catch::Contains("\"SPAWND_WAL_MAX_BYTES\" => \"16777216\""));
  CHECK_THAT(c, !Catch::Contains("accesslog"));
}

TEST_CASE("Apache uses mpm_event and mod_cgid, and a non-root user only when started as root", "[unit][bench]") {
  const std::string c = apache_config(setup(false));
  CHECK_THAT(c, Catch::Contains("Listen 127.0.0.1:18080\n"));
  CHECK_THAT(c, Catch::Contains("mod_mpm_event.so"));
  CHECK_THAT(c, Catch::Contains("mod_cgid.so"));
  CHECK_THAT(c, Catch::Contains("ScriptAlias /cgi-bin/ \"/opt/cgi-bin/\""));
  CHECK_THAT(c, Catch::Contains("SetEnv SPAWND_DB \"/tmp/db/run.db\""));
  CHECK_THAT(c, Catch::Contains("SetEnv SPAWND_WAL_MAX_BYTES \"16777216\""));
  CHECK_THAT(c, !Catch::Contains("CustomLog"));
  CHECK_THAT(c, !Catch::Contains("\nUser "));
  CHECK_THAT(apache_config(setup(true)), Catch::Contains("\nUser "));
}

TEST_CASE("nginx passes /cgi-bin/NAME to the FastCGI socket with SCRIPT_FILENAME in cgi-bin", "[unit][bench]") {
  const std::string c = nginx_config(setup(false), "fcgiwrap", "/tmp/w/fastcgi.sock");
  CHECK_THAT(c, Catch::Contains("worker_processes 1;"));
  CHECK_THAT(c, Catch::Contains("listen 127.0.0.1:18080;"));
  CHECK_THAT(c, Catch::Contains("access_log off;"));
  CHECK_THAT(c, Catch::Contains("fastcgi_pass unix:/tmp/w/fastcgi.sock;"));
  CHECK_THAT(c, Catch::Contains("fastcgi_param SCRIPT_FILENAME /opt/cgi-bin/$script;"));
  CHECK_THAT(c, Catch::Contains("fastcgi_param SPAWND_PRAGMAS baseline;"));
  CHECK_THAT(c, Catch::Contains("fastcgi_param SPAWND_WAL_MAX_BYTES 16777216;"));
  CHECK_THAT(c, !Catch::Contains("user root"));
  CHECK_THAT(nginx_config(setup(true), "fcgiwrap", "/s"), Catch::Contains("user root;"));
}

TEST_CASE("nginx static serves the docroot and passes nothing to FastCGI", "[unit][bench]") {
  const std::string c = nginx_config(setup(false), "static", "");
  CHECK_THAT(c, Catch::Contains("root /tmp/w/www;"));
  CHECK_THAT(c, !Catch::Contains("fastcgi_pass"));
}
