// Unit tests for server/mime.h: mime_type_for.
#include <catch2/catch.hpp>

#include <string_view>

#include "server/mime.h"

using spawnd::server::mime_type_for;

namespace {

struct MimeCase {
  std::string_view path;
  std::string_view type;
};

}  // namespace

TEST_CASE("common web extensions map to their media types", "[unit][mime]") {
  const MimeCase cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"/docs/old.htm", "text/html; charset=utf-8"},
      {"/style.css", "text/css; charset=utf-8"},
      {"/app.js", "text/javascript; charset=utf-8"},
      {"/mod.mjs", "text/javascript; charset=utf-8"},
      {"/data.json", "application/json"},
      {"/app.js.map", "application/json"},
      {"/robots.txt", "text/plain; charset=utf-8"},
      {"/README.md", "text/markdown; charset=utf-8"},
      {"/table.csv", "text/csv; charset=utf-8"},
      {"/feed.xml", "application/xml"},
      {"/logo.svg", "image/svg+xml"},
      {"/a.png", "image/png"},
      {"/a.jpg", "image/jpeg"},
      {"/a.jpeg", "image/jpeg"},
      {"/a.gif", "image/gif"},
      {"/a.webp", "image/webp"},
      {"/a.avif", "image/avif"},
      {"/favicon.ico", "image/x-icon"},
      {"/f.woff", "font/woff"},
      {"/f.woff2", "font/woff2"},
      {"/f.ttf", "font/ttf"},
      {"/f.otf", "font/otf"},
      {"/doc.pdf", "application/pdf"},
      {"/m.wasm", "application/wasm"},
      {"/v.mp4", "video/mp4"},
      {"/v.webm", "video/webm"},
      {"/s.mp3", "audio/mpeg"},
      {"/s.ogg", "audio/ogg"},
      {"/s.wav", "audio/wav"},
      {"/x.zip", "application/zip"},
      {"/x.tar.gz", "application/gzip"},
      {"/x.tar", "application/x-tar"},
  };
  for (const MimeCase& c : cases) {
    CAPTURE(c.path);
    CHECK(mime_type_for(c.path) == c.type);
  }
}

TEST_CASE("extensions are matched case-insensitively", "[unit][mime]") {
  CHECK(mime_type_for("a.PNG") == "image/png");
  CHECK(mime_type_for("/INDEX.HTML") == "text/html; charset=utf-8");
  CHECK(mime_type_for("/Style.Css") == "text/css; charset=utf-8");
}

TEST_CASE("unknown or missing extensions are application/octet-stream", "[unit][mime]") {
  const std::string_view paths[] = {"",          "/",          "/Makefile", "/archive.xyz", "/file.",
                                    "/dir.html/", "/dir.d/file", "/.html5",  "/a.htmlx",     "/a.ht"};
  for (const std::string_view path : paths) {
    CAPTURE(path);
    CHECK(mime_type_for(path) == "application/octet-stream");
  }
}
