// The open-file cache of static files end to end (--static-cache-entries, --static-cache-valid,
// --static-cache-body-bytes; server/static_file_cache.h): a real spawnd serving a temp root that the test changes
// under it. What is checked is the cache's behaviour, not its speed: a file changed in place, replaced by rename,
// deleted or turned into a directory is served as it is now once --static-cache-valid has passed (a large file
// written in place at once); every response is one whole version of the file (its body, Content-Length and ETag
// agree); responses are byte for byte those of a server without the cache; and the open files stay bounded.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using namespace std::chrono_literals;
using spawnd::Fd;

namespace {

// Each test's --static-cache-valid, and how long it sleeps to be past it.
constexpr const char* kValidSeconds = "0.3";
constexpr auto kPastValid = 400ms;

std::vector<std::string> args(const TempDir& root, std::vector<std::string> extra = {}) {
  std::vector<std::string> a{"--root", root.path(), "--quiet", "--static-cache-valid", kValidSeconds};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// A file's content of `size` bytes that says which version it is.
std::string version(char which, std::size_t size) {
  std::string s = std::string("version ") + which + "\n";
  while (s.size() < size) s += which;
  s.resize(size);
  return s;
}

// Writes `content` into the existing file `path` in place (same inode: open without O_CREAT|O_EXCL, truncate).
void write_in_place(const std::string& path, std::string_view content) {
  std::FILE* f = std::fopen(path.c_str(), "r+");
  REQUIRE(f != nullptr);
  REQUIRE(::ftruncate(::fileno(f), 0) == 0);
  REQUIRE(std::fwrite(content.data(), 1, content.size(), f) == content.size());
  REQUIRE(std::fclose(f) == 0);
}

// One whole version: the body is all there and its Content-Length says so.
void check_whole(const HttpResponse& r) {
  REQUIRE(r.status == 200);
  CHECK(r.is_complete);
  CHECK(r.field("Content-Length") == std::optional<std::string>(std::to_string(r.body.size())));
}

ino_t inode_of(const std::string& path) {
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("Static cache: a small file written in place is served as it is now once --static-cache-valid has passed",
          "[e2e][static][static-cache]") {
  TempDir root;
  const std::string path = root.write("page.html", version('a', 300));
  Spawnd s(args(root));
  const HttpResponse first = get(s.port(), "/page.html");
  check_whole(first);
  CHECK(first.body == version('a', 300));
  CHECK(get(s.port(), "/page.html").field("ETag") == first.field("ETag"));  // from the cache now
  const ino_t inode = inode_of(path);
  write_in_place(path, version('b', 500));
  REQUIRE(inode_of(path) == inode);
  // Within the interval either version may come, but always a whole one with its own validators.
  const HttpResponse early = get(s.port(), "/page.html");
  check_whole(early);
  CHECK((early.body == version('a', 300) || early.body == version('b', 500)));
  std::this_thread::sleep_for(kPastValid);
  const HttpResponse after = get(s.port(), "/page.html");
  check_whole(after);
  CHECK(after.body == version('b', 500));
  CHECK(after.field("ETag") != first.field("ETag"));
  check_clean_end(s);
}

TEST_CASE("Static cache: a large file (sent from its fd) written in place is served as it is now at once",
          "[e2e][static][static-cache]") {
  TempDir root;
  const std::string path = root.write("big.bin", version('a', 200'000));
  // A long interval: only the fstat of the open file before each response can see the change.
  Spawnd s({"--root", root.path(), "--quiet", "--static-cache-valid", "3600", "--static-cache-body-bytes", "1024"});
  const HttpResponse first = get(s.port(), "/big.bin");
  check_whole(first);
  CHECK(first.body == version('a', 200'000));
  write_in_place(path, version('b', 200'000));  // the same size: only the times tell
  const HttpResponse after = get(s.port(), "/big.bin");
  check_whole(after);
  CHECK(after.body == version('b', 200'000));
  CHECK(after.field("ETag") != first.field("ETag"));
  write_in_place(path, version('c', 1'000));  // shrunk
  const HttpResponse shrunk = get(s.port(), "/big.bin");
  check_whole(shrunk);
  CHECK(shrunk.body == version('c', 1'000));
  check_clean_end(s);
}

TEST_CASE("Static cache: a file replaced by rename is served whole, old or new, and new once the interval passed",
          "[e2e][static][static-cache]") {
  const std::size_t size = GENERATE(std::size_t{300}, std::size_t{100'000});  // a snapshot; sent from its fd
  INFO("file of " << size << " bytes");
  TempDir root;
  const std::string path = root.write("app.js", version('a', size));
  Spawnd s(args(root, {"--static-cache-body-bytes", "16384"}));
  const HttpResponse first = get(s.port(), "/app.js");
  check_whole(first);
  CHECK(first.body == version('a', size));
  const ino_t old_inode = inode_of(path);
  root.write("app.js.new", version('b', size + 7));
  REQUIRE(::rename((path + ".new").c_str(), path.c_str()) == 0);
  REQUIRE(inode_of(path) != old_inode);
  const HttpResponse early = get(s.port(), "/app.js");
  check_whole(early);
  CHECK((early.body == version('a', size) || early.body == version('b', size + 7)));
  std::this_thread::sleep_for(kPastValid);
  const HttpResponse after = get(s.port(), "/app.js");
  check_whole(after);
  CHECK(after.body == version('b', size + 7));
  CHECK(after.field("ETag") != first.field("ETag"));
  check_clean_end(s);
}

TEST_CASE("Static cache: a deleted file is 404 once the interval passed, and 200 again once it is back",
          "[e2e][static][static-cache]") {
  TempDir root;
  const std::string path = root.write("gone.txt", "here\n");
  Spawnd s(args(root));
  CHECK(get(s.port(), "/gone.txt").status == 200);
  REQUIRE(::unlink(path.c_str()) == 0);
  std::this_thread::sleep_for(kPastValid);
  CHECK(get(s.port(), "/gone.txt").status == 404);
  CHECK(get(s.port(), "/gone.txt").status == 404);  // the 404 is cached too...
  root.write("gone.txt", "back\n");
  std::this_thread::sleep_for(kPastValid);
  const HttpResponse back = get(s.port(), "/gone.txt");  // ...for no longer than the interval
  check_whole(back);
  CHECK(back.body == "back\n");
  check_clean_end(s);
}

TEST_CASE("Static cache: a file turned into a directory is redirected, then its index served",
          "[e2e][static][static-cache]") {
  TempDir root;
  const std::string path = root.write("docs", "a file for now\n");
  Spawnd s(args(root));
  CHECK(get(s.port(), "/docs").body == "a file for now\n");
  REQUIRE(::unlink(path.c_str()) == 0);
  root.write("docs/index.html", "<p>the docs</p>\n");
  std::this_thread::sleep_for(kPastValid);
  const HttpResponse moved = get(s.port(), "/docs");
  CHECK(moved.status == 301);
  CHECK(moved.field("Location") == std::optional<std::string>("/docs/"));
  const HttpResponse index = get(s.port(), "/docs/");
  check_whole(index);
  CHECK(index.body == "<p>the docs</p>\n");
  CHECK(index.field("Content-Type")->starts_with("text/html"));
  // And the index replaced by another index name: "/docs/" resolves anew.
  REQUIRE(::unlink((root.path() + "/docs/index.html").c_str()) == 0);
  std::this_thread::sleep_for(kPastValid);
  CHECK(get(s.port(), "/docs/").status == 404);
  check_clean_end(s);
}

TEST_CASE("Static cache: responses are those of a server without the cache, validators, ranges and conditionals included",
          "[e2e][static][static-cache]") {
  TempDir root;
  root.write("small.css", version('s', 2'000));
  root.write("large.bin", version('l', 300'000));
  root.write("small.css.gz", "gzip representation of small.css\n");
  // The same root served with the cache (snapshots up to 16 KiB: small.css in memory, large.bin from its fd) and
  // without it.
  const std::vector<std::string> common{"--root", root.path(), "--quiet", "--precompressed", "gzip"};
  std::vector<std::string> cached_args = common;
  cached_args.insert(cached_args.end(), {"--static-cache-valid", "60"});
  std::vector<std::string> uncached_args = common;
  uncached_args.insert(uncached_args.end(), {"--static-cache-entries", "0"});
  Spawnd cached(cached_args);
  Spawnd uncached(uncached_args);

  // The validators, from a first GET.
  const HttpResponse small = get(uncached.port(), "/small.css");
  const HttpResponse large = get(uncached.port(), "/large.bin");
  REQUIRE(small.field("ETag"));
  REQUIRE(large.field("Last-Modified"));
  std::vector<std::string> requests;
  for (const char* target : {"/small.css", "/large.bin"}) {
    const HttpResponse& base = std::string_view(target) == "/small.css" ? small : large;
    const std::string etag = *base.field("ETag");
    const std::string last_modified = *base.field("Last-Modified");
    for (const std::string& fields : std::vector<std::string>{
             "",
             "Range: bytes=0-9\r\n",
             "Range: bytes=-5\r\n",
             "Range: bytes=10-20,30-40\r\n",
             "Range: bytes=999999-\r\n",
             "If-None-Match: " + etag + "\r\n",
             "If-None-Match: \"other\"\r\n",
             "If-Modified-Since: " + last_modified + "\r\n",
             "If-Match: \"other\"\r\n",
             "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n",
             "If-Range: " + etag + "\r\nRange: bytes=1-2\r\n",
             "If-Range: \"stale\"\r\nRange: bytes=1-2\r\n",
             "Accept-Encoding: gzip\r\n",
             "Accept-Encoding: gzip\r\nRange: bytes=0-3\r\n",
         }) {
      for (const char* method : {"GET", "HEAD"})
        requests.push_back(std::string(method) + " " + target + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n");
    }
  }
  requests.push_back("GET /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n");
  requests.push_back("POST /small.css HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");

  // Everything twice on one keep-alive connection each: the cached server's second round comes from its cache.
  auto exchange = [](const Spawnd& s, const std::vector<std::string>& reqs) {
    Fd fd = connect_to(s.port());
    std::string leftover;
    std::vector<std::string> out;
    for (int round = 0; round < 2; ++round) {
      for (const std::string& req : reqs) {
        REQUIRE(send_all(fd, req));
        const HttpResponse r = read_response(fd, leftover, req.starts_with("HEAD"));
        std::string text = r.status_line + "\n";
        for (const auto& [name, value] : r.fields)
          if (name != "Date") text += name + ": " + value + "\n";
        text += "\n" + r.body;
        out.push_back(std::move(text));
      }
    }
    return out;
  };
  const std::vector<std::string> want = exchange(uncached, requests);
  const std::vector<std::string> got = exchange(cached, requests);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(requests[i % requests.size()]);
    CHECK(got[i] == want[i]);
  }
  check_clean_end(cached);
  check_clean_end(uncached);
}

TEST_CASE("Static cache: open files stay within --static-cache-entries however many files are served",
          "[e2e][static][static-cache]") {
  TempDir root;
  constexpr int kFiles = 200;
  constexpr std::size_t kEntries = 16;
  for (int i = 0; i < kFiles; ++i) root.write("f" + std::to_string(i) + ".bin", version('x', 5'000));
  // No snapshots: every cached file holds its fd.
  Spawnd s({"--root", root.path(), "--quiet", "--static-cache-entries", std::to_string(kEntries),
            "--static-cache-body-bytes", "0", "--static-cache-valid", "60"});
  const std::size_t baseline = fd_count(s.pid());
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kFiles; ++i) {
      const HttpResponse r = get(s.port(), "/f" + std::to_string(i) + ".bin");
      REQUIRE(r.status == 200);
      REQUIRE(r.body.size() == 5'000);
    }
  }
  // The connections are closed (Connection: close); what is left open is the cache's.
  std::size_t now = 0;
  CHECK(wait_until([&] { return (now = fd_count(s.pid())) <= baseline + kEntries; }, 5s));
  INFO("fds: " << now << ", baseline " << baseline);
  CHECK(now >= baseline + kEntries - 1);  // the cache is in use: the last files are held open
  check_clean_end(s);
}

TEST_CASE("Static cache: with --static-cache-entries 0 there is no cache: a change is served at once, no fd kept",
          "[e2e][static][static-cache]") {
  TempDir root;
  const std::string path = root.write("page.html", version('a', 300));
  Spawnd s({"--root", root.path(), "--quiet", "--static-cache-entries", "0"});
  const std::size_t baseline = fd_count(s.pid());
  CHECK(get(s.port(), "/page.html").body == version('a', 300));
  write_in_place(path, version('b', 300));
  CHECK(get(s.port(), "/page.html").body == version('b', 300));
  root.write("page.html.new", version('c', 10));
  REQUIRE(::rename((path + ".new").c_str(), path.c_str()) == 0);
  CHECK(get(s.port(), "/page.html").body == version('c', 10));
  REQUIRE(::unlink(path.c_str()) == 0);
  CHECK(get(s.port(), "/page.html").status == 404);
  CHECK(wait_until([&] { return fd_count(s.pid()) <= baseline; }, 5s));
  check_clean_end(s);
}

TEST_CASE("Static cache: a precompressed sidecar added or removed is noticed once the interval passed",
          "[e2e][static][static-cache][precompressed]") {
  TempDir root;
  root.write("style.css", "body {}\n");
  Spawnd s(args(root, {"--precompressed", "gzip"}));
  const std::string req = "GET /style.css HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
  CHECK(request(s.port(), req).body == "body {}\n");  // no sidecar (and its absence cached)
  const std::string gz = root.write("style.css.gz", "gzip representation\n");
  std::this_thread::sleep_for(kPastValid);
  HttpResponse r = request(s.port(), req);
  CHECK(r.body == "gzip representation\n");
  CHECK(r.field("Content-Encoding") == std::optional<std::string>("gzip"));
  REQUIRE(::unlink(gz.c_str()) == 0);
  std::this_thread::sleep_for(kPastValid);
  r = request(s.port(), req);
  CHECK(r.body == "body {}\n");
  CHECK(!r.field("Content-Encoding"));
  check_clean_end(s);
}
