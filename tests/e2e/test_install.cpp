// Packaging tests (tag [packaging], ctest label "packaging"): what `cmake --install` and `cpack -G DEB` make of this
// build (cmake/install.cmake), used as an operator and a handler author would use it:
//   - the install tree: a handler project of one's own (tests/install/visits/) configured with find_package(spawnd)
//     against it, built, and served by the INSTALLED spawnd in every mode;
//   - the Debian package: its paths, its Depends (Debian packages only), its maintainer scripts and conffiles.
// They run the real tools (cmake, cpack, dpkg-deb) on the real build tree, each bounded; they take ~10-40 s each and
// are left out of sanitizer builds (the install tree's static libraries would need the sanitizer runtime to link).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;

namespace {

namespace fs = std::filesystem;

constexpr int kToolTimeoutMs = 120'000;  // one cmake/cpack step, on 2 cores shared with other tests

// Runs a tool and fails the test (with its output) unless it exits 0.
ExitResult run_ok(const std::vector<std::string>& argv) {
  ExitResult r = run_command(argv, kToolTimeoutMs);
  INFO("$ " << argv.at(0) << " " << (argv.size() > 1 ? argv[1] : "") << " ...\n" << r.stdout_text << r.stderr_text);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(WEXITSTATUS(r.status) == 0);
  return r;
}

// The lines of `text`.
std::set<std::string> lines_of(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

// "visits=2 uid=0 pid=1234\n" → 1234
long pid_in(const std::string& body) {
  const auto at = body.find(" pid=");
  return at == std::string::npos ? -1 : std::stol(body.substr(at + 5));
}

}  // namespace

TEST_CASE("cmake --install: a handler project of one's own builds against the tree and runs in every mode",
          "[e2e][packaging]") {
  TempDir dir;
  const std::string prefix = dir.path() + "/prefix";
  run_ok({SPAWND_CMAKE_COMMAND, "--install", SPAWND_BUILD_DIR, "--prefix", prefix});
  for (const char* path :
       {"bin/spawnd", "bin/spawnd-bench", "share/man/man1/spawnd.1", "lib/systemd/system/spawnd.service",
        "lib/systemd/system/spawnd.socket", "lib/systemd/system/spawnd-https.socket", "etc/spawnd/spawnd.toml", "etc/logrotate.d/spawnd",
        "include/spawnd/handler.h", "include/spawnd/db/database.h", "libexec/spawnd/cgi-bin/guestbook",
        "libexec/spawnd/cgi-bin/guestbook.so"}) {
    INFO(path);
    CHECK(fs::exists(prefix + "/" + path));
  }
  CHECK(read_file(prefix + "/share/man/man1/spawnd.1").find(".TH SPAWND \"1\"") != std::string::npos);
  CHECK(read_file(prefix + "/share/man/man1/spawnd.1").find("\\-\\-user") != std::string::npos);

  // The project of tests/install/visits/, outside this build: find_package(spawnd) + spawnd_add_handler().
  const std::string build = dir.path() + "/visits";
  run_ok({SPAWND_CMAKE_COMMAND, "-S", SPAWND_SOURCE_DIR "/tests/install/visits", "-B", build,
          "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release"});
  run_ok({SPAWND_CMAKE_COMMAND, "--build", build, "-j", "2"});
  const std::string cgi_bin = build + "/cgi-bin";
  REQUIRE(fs::exists(cgi_bin + "/visits"));
  REQUIRE(fs::exists(cgi_bin + "/visits.so"));

  // The installed spawnd serves it in every mode: cgi and fork (a fresh process per request), fastcgi (one
  // persistent worker) and inproc (the .so inside spawnd). The database is a new one per mode.
  for (const char* mode : {"cgi", "fork", "fastcgi", "inproc"}) {
    INFO("--mode " << mode);
    Spawnd s({"--root", cgi_bin, "--cgi-bin", cgi_bin, "--db", dir.path() + "/" + mode + ".db", "--mode", mode,
              "--workers", "1", "--fork-servers", "1"},
             {}, prefix + "/bin/spawnd");
    HttpResponse first = get(s.port(), "/cgi-bin/visits");
    HttpResponse second = get(s.port(), "/cgi-bin/visits");
    INFO(s.stderr_text());
    REQUIRE(first.status == 200);
    REQUIRE(second.status == 200);
    const std::string uid = " uid=" + std::to_string(::getuid()) + " ";
    CHECK(first.body.rfind("visits=1" + uid, 0) == 0);
    CHECK(second.body.rfind("visits=2" + uid, 0) == 0);
    const std::string m = mode;
    if (m == "inproc") {
      CHECK(pid_in(first.body) == s.pid());
    } else if (m == "fastcgi") {
      CHECK(pid_in(first.body) == pid_in(second.body));
      CHECK(pid_in(first.body) != s.pid());
    } else {
      CHECK(pid_in(first.body) != pid_in(second.body));
    }
    check_clean_end(s);
  }

  // And the installed example handlers, from libexec.
  Spawnd s({"--root", cgi_bin, "--cgi-bin", prefix + "/libexec/spawnd/cgi-bin"}, {}, prefix + "/bin/spawnd");
  CHECK(get(s.port(), "/cgi-bin/hello").body == "Hello, world!\n");
  CHECK(get(s.port(), "/cgi-bin/hello.so").status == 403);  // the shared object is not a program
  check_clean_end(s);
}

TEST_CASE("cpack -G DEB: /usr/bin/spawnd, the units, the config as a conffile, Depends on Debian packages",
          "[e2e][packaging]") {
  TempDir dir;
  run_ok({SPAWND_CPACK_COMMAND, "--config", SPAWND_BUILD_DIR "/CPackConfig.cmake", "-G", "DEB", "-B", dir.path()});
  std::string deb;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    if (entry.path().extension() == ".deb") deb = entry.path().string();
  REQUIRE(!deb.empty());
  CHECK(fs::path(deb).filename().string().rfind("spawnd_", 0) == 0);

  // dpkg-deb -c: "-rwxr-xr-x root/root 123 2026-12-03 10:00 ./usr/bin/spawnd"; keep mode and path.
  std::set<std::string> contents;
  for (const std::string& line : lines_of(run_ok({"dpkg-deb", "-c", deb}).stdout_text)) {
    std::istringstream fields(line);
    std::string mode, owner, size, date, time, path;
    fields >> mode >> owner >> size >> date >> time >> path;
    contents.insert(mode + " " + path);
  }
  INFO([&] {
    std::string all;
    for (const std::string& c : contents) all += c + "\n";
    return all;
  }());
  for (const char* entry : {"-rwxr-xr-x ./usr/bin/spawnd", "-rwxr-xr-x ./usr/bin/spawnd-bench",
                            "-rw-r--r-- ./usr/lib/systemd/system/spawnd.service",
                            "-rw-r--r-- ./usr/lib/systemd/system/spawnd.socket",
                            "-rw-r--r-- ./usr/lib/systemd/system/spawnd-https.socket",
                            "-rw-r--r-- ./etc/spawnd/spawnd.toml",
                            "-rw-r--r-- ./etc/logrotate.d/spawnd",
                            "-rw-r--r-- ./usr/share/man/man1/spawnd.1", "-rwxr-xr-x ./usr/libexec/spawnd/cgi-bin/kv",
                            "-rw-r--r-- ./usr/libexec/spawnd/cgi-bin/kv.so",
                            "-rw-r--r-- ./usr/include/spawnd/handler.h",
                            "-rw-r--r-- ./usr/lib/cmake/spawnd/spawndConfig.cmake"}) {
    INFO(entry);
    CHECK(contents.count(entry) == 1);
  }
  for (const std::string& c : contents) CHECK(c.find("/usr/local/") == std::string::npos);

  // Depends: dpkg-shlibdeps' libraries plus adduser, each a Debian package (known to dpkg here: spawnd runs here).
  const std::string depends = run_ok({"dpkg-deb", "-f", deb, "Depends"}).stdout_text;
  INFO("Depends: " << depends);
  for (const char* package : {"adduser", "libc6", "libstdc++6", "libsqlite3-0", "libsystemd0"})
    CHECK(depends.find(package) != std::string::npos);
  std::istringstream entries(depends);
  for (std::string entry; std::getline(entries, entry, ',');) {
    std::istringstream words(entry);
    std::string name;
    words >> name;
    INFO("Depends entry: " << name);
    ExitResult known = run_command({"dpkg-query", "-W", name}, 10'000);
    CHECK(WIFEXITED(known.status));
    CHECK(WEXITSTATUS(known.status) == 0);
  }

  // The control archive: the system user, the conffile.
  CHECK(run_ok({"dpkg-deb", "-I", deb, "postinst"}).stdout_text.find("adduser --system --group") != std::string::npos);
  CHECK(run_ok({"dpkg-deb", "-I", deb, "conffiles"}).stdout_text ==
        "/etc/spawnd/spawnd.toml\n/etc/logrotate.d/spawnd\n");

  // The unit as installed names the man page that is installed beside it.
  const std::string tree = dir.path() + "/tree";
  run_ok({"dpkg-deb", "-x", deb, tree});
  CHECK(read_file(tree + "/usr/lib/systemd/system/spawnd.service").find("Documentation=man:spawnd(1)") !=
        std::string::npos);
  ExitResult help = run_ok({tree + "/usr/bin/spawnd", "--help"});
  CHECK(help.stdout_text.find("--user") != std::string::npos);
}
