// Precompressed sidecars end to end (--precompressed, content_coding.h): a real spawnd serving a temp root where
// style.css has style.css.br and style.css.gz beside it. Which representation each Accept-Encoding gets (RFC 9110
// §12.5.3), its fields (Content-Encoding, Vary, ETag, Content-Type), and ranges, conditionals and HEAD on it.
// The sidecars' bytes are markers, not real compressed data: spawnd never looks inside them.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <string>
#include <string_view>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

const std::string kCss = "body { color: #333; }\n";
const std::string kGz = "gzip representation of style.css\n";
const std::string kBr = "br representation of style.css\n";

// A root with style.css and its .br and .gz sidecars (written after it: at least as new), other.js with a .gz only,
// plain.txt with none.
void write_site(const TempDir& root) {
  root.write("style.css", kCss);
  root.write("style.css.gz", kGz);
  root.write("style.css.br", kBr);
  root.write("other.js", "let x = 1;\n");
  root.write("other.js.gz", "gzip representation of other.js\n");
  root.write("plain.txt", "plain\n");
}

std::vector<std::string> args(const TempDir& root, std::string codings = "br,gzip") {
  return {"--root", root.path(), "--quiet", "--precompressed", std::move(codings)};
}

// GET (or `method`) `target` with "Accept-Encoding: `accept`" (none when empty) and `extra` field lines.
HttpResponse fetch(std::uint16_t port, std::string_view target, std::string_view accept, std::string_view extra = "",
                   std::string_view method = "GET") {
  std::string req = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!accept.empty()) req += "Accept-Encoding: " + std::string(accept) + "\r\n";
  req += std::string(extra) + "\r\n";
  if (method == "HEAD") {
    Fd fd = connect_to(port);
    REQUIRE(send_all(fd, req));
    return read_response(fd, true);
  }
  return request(port, req);
}

}  // namespace

TEST_CASE("Precompressed: Accept-Encoding gzip gets FILE.gz with Content-Encoding, Vary and its own ETag",
          "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s(args(root));
  const HttpResponse identity = fetch(s.port(), "/style.css", "identity");
  const HttpResponse gz = fetch(s.port(), "/style.css", "gzip");
  REQUIRE(gz.status == 200);
  CHECK(gz.body == kGz);
  CHECK(gz.field("Content-Encoding") == std::optional<std::string>("gzip"));
  CHECK(gz.field("Content-Type") == identity.field("Content-Type"));
  CHECK(gz.field("Content-Type")->starts_with("text/css"));
  CHECK(gz.field("Vary") == std::optional<std::string>("Accept-Encoding"));
  CHECK(gz.field("Content-Length") == std::optional<std::string>(std::to_string(kGz.size())));
  REQUIRE(gz.field("ETag"));
  CHECK(gz.field("ETag")->ends_with("-gzip\""));
  CHECK(gz.field("ETag") != identity.field("ETag"));
  check_clean_end(s);
}

TEST_CASE("Precompressed: the list's order decides among acceptable codings and q=0 refuses one", "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s(args(root));
  // br comes first in --precompressed br,gzip, whatever the client's order or weights.
  CHECK(fetch(s.port(), "/style.css", "gzip, deflate, br").body == kBr);
  CHECK(fetch(s.port(), "/style.css", "gzip;q=1.0, br;q=0.1").body == kBr);
  CHECK(fetch(s.port(), "/style.css", "br, gzip").field("Content-Encoding") == std::optional<std::string>("br"));
  // q=0: not acceptable.
  const HttpResponse no_br = fetch(s.port(), "/style.css", "br;q=0, gzip");
  CHECK(no_br.body == kGz);
  CHECK(no_br.field("Content-Encoding") == std::optional<std::string>("gzip"));
  // Names and the q parameter are case-insensitive; x-gzip means gzip.
  CHECK(fetch(s.port(), "/style.css", "GZIP;Q=0.5").body == kGz);
  CHECK(fetch(s.port(), "/style.css", "x-gzip").body == kGz);
  // "*" stands for every coding not named.
  CHECK(fetch(s.port(), "/style.css", "*").body == kBr);
  CHECK(fetch(s.port(), "/style.css", "br;q=0, *").body == kGz);
  CHECK(fetch(s.port(), "/style.css", "*;q=0, identity").body == kCss);
  // --precompressed gzip,br prefers gzip.
  Spawnd gzip_first(args(root, "gzip,br"));
  CHECK(fetch(gzip_first.port(), "/style.css", "br, gzip").body == kGz);
  check_clean_end(s);
  check_clean_end(gzip_first);
}

TEST_CASE("Precompressed: identity only, or no Accept-Encoding, gets the file itself, still with Vary",
          "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s(args(root));
  for (std::string_view accept : {"identity", "", "deflate", "gzip;q=0, br;q=0"}) {
    INFO("Accept-Encoding: " << accept);
    const HttpResponse r = fetch(s.port(), "/style.css", accept);
    CHECK(r.status == 200);
    CHECK(r.body == kCss);
    CHECK(!r.field("Content-Encoding"));
    CHECK(r.field("Vary") == std::optional<std::string>("Accept-Encoding"));
  }
  check_clean_end(s);
}

TEST_CASE("Precompressed: a missing sidecar falls to the next coding, then to the file", "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s(args(root));
  const HttpResponse js = fetch(s.port(), "/other.js", "br, gzip");  // no other.js.br
  CHECK(js.body == "gzip representation of other.js\n");
  CHECK(js.field("Content-Encoding") == std::optional<std::string>("gzip"));
  const HttpResponse txt = fetch(s.port(), "/plain.txt", "br, gzip");  // no sidecar at all
  CHECK(txt.body == "plain\n");
  CHECK(!txt.field("Content-Encoding"));
  check_clean_end(s);
}

TEST_CASE("Precompressed: a sidecar older than its file is ignored", "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  // style.css edited after its sidecars were made: its mtime one minute ahead of theirs.
  struct stat st{};
  REQUIRE(::stat((root.path() + "/style.css.gz").c_str(), &st) == 0);
  const timespec later[2] = {{st.st_mtim.tv_sec + 60, 0}, {st.st_mtim.tv_sec + 60, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (root.path() + "/style.css").c_str(), later, 0) == 0);
  Spawnd s(args(root));
  const HttpResponse r = fetch(s.port(), "/style.css", "br, gzip");
  CHECK(r.body == kCss);
  CHECK(!r.field("Content-Encoding"));
  check_clean_end(s);
}

TEST_CASE("Precompressed: Range, If-None-Match and HEAD apply to the chosen representation", "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s(args(root));
  const HttpResponse part = fetch(s.port(), "/style.css", "gzip", "Range: bytes=0-3\r\n");
  CHECK(part.status == 206);
  CHECK(part.body == kGz.substr(0, 4));
  CHECK(part.field("Content-Range") == std::optional<std::string>("bytes 0-3/" + std::to_string(kGz.size())));
  CHECK(part.field("Content-Encoding") == std::optional<std::string>("gzip"));

  const std::string gz_etag = *fetch(s.port(), "/style.css", "gzip").field("ETag");
  const HttpResponse not_modified = fetch(s.port(), "/style.css", "gzip", "If-None-Match: " + gz_etag + "\r\n");
  CHECK(not_modified.status == 304);
  CHECK(not_modified.field("ETag") == std::optional<std::string>(gz_etag));
  CHECK(not_modified.field("Vary") == std::optional<std::string>("Accept-Encoding"));
  // The gzip tag does not match the identity representation.
  const HttpResponse identity = fetch(s.port(), "/style.css", "identity", "If-None-Match: " + gz_etag + "\r\n");
  CHECK(identity.status == 200);
  CHECK(identity.body == kCss);
  // If-Range with the gzip tag: the range of the gzip representation.
  const HttpResponse if_range =
      fetch(s.port(), "/style.css", "gzip", "Range: bytes=5-8\r\nIf-Range: " + gz_etag + "\r\n");
  CHECK(if_range.status == 206);
  CHECK(if_range.body == kGz.substr(5, 4));

  const HttpResponse head = fetch(s.port(), "/style.css", "gzip", "", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.field("Content-Length") == std::optional<std::string>(std::to_string(kGz.size())));
  CHECK(head.field("Content-Encoding") == std::optional<std::string>("gzip"));
  check_clean_end(s);
}

TEST_CASE("Precompressed: sidecars stay fetchable by name, as plain files", "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s(args(root));
  const HttpResponse r = fetch(s.port(), "/style.css.gz", "gzip");
  CHECK(r.status == 200);
  CHECK(r.body == kGz);
  CHECK(!r.field("Content-Encoding"));
  check_clean_end(s);
}

TEST_CASE("Precompressed: off by default, an unknown coding is a usage error", "[e2e][precompressed]") {
  TempDir root;
  write_site(root);
  Spawnd s({"--root", root.path(), "--quiet"});
  const HttpResponse r = fetch(s.port(), "/style.css", "br, gzip");
  CHECK(r.body == kCss);
  CHECK(!r.field("Content-Encoding"));
  CHECK(!r.field("Vary"));
  check_clean_end(s);

  const ExitResult bad = run_spawnd({"--root", root.path(), "--listen", "127.0.0.1:0", "--precompressed", "gzip,lzma"});
  CHECK(WEXITSTATUS(bad.status) == 2);
  CHECK(bad.stderr_text.find("lzma") != std::string::npos);
}
