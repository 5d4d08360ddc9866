// server/static_path.h — turns the path of a request-target into a safe path below a document root.
//
// Pure string code, no file-system access; symlinks are checked when the file is opened (static_files.cpp opens with
// openat2(RESOLVE_BENEATH) on the root's fd). Shared by static files and the CGI mapping, so that both refuse the same
// hostile paths.
#pragma once

#include <string>
#include <string_view>

namespace spawnd::server {

enum class PathStatus {
  Ok,          // `out` holds the normalised path
  BadRequest,  // malformed percent-encoding (RFC 3986 §2.1) or a path that does not start with '/' → 400
  NotFound,    // escapes the root, names a dotfile, contains an encoded '/' or NUL → 404 (we do not say why)
};

// Normalises `raw_path`, the path component of an origin-form request-target (RFC 9112 §3.2.1) without the query.
// Percent-decodes it (RFC 3986 §2.1), collapses repeated '/', removes "." segments and resolves ".." segments
// (RFC 3986 §5.2.4); a ".." that would climb above the root gives NotFound. Any segment that begins with '.' after
// decoding (".git", ".htpasswd") gives NotFound, except a first segment ".well-known" (RFC 8615), as does "%2F" (an encoded '/') and "%00". A trailing '/' is kept
// ("/docs/" stays "/docs/") so that the caller can serve the directory's index.html.
// On Ok, `out` starts with '/' and has no "." or ".." segments; on other results `out` is unspecified.
[[nodiscard]] PathStatus normalize_request_path(std::string_view raw_path, std::string& out);

// Extension routing (`--fastcgi-pass '*.php=ADDR'`), split as nginx's `fastcgi_split_path_info ^(.+?\.php)(/.*)$`:
// the length of the script part of `normalized_path` (as normalize_request_path() makes it), which ends with the
// first segment whose name ends in `extension` (".php") and is longer than it; std::string_view::npos if no
// segment does. "/a.php/extra" → 6 ("/a.php", PATH_INFO "/extra"); "/x/b.php" → 8; "/a.phpx", "/.php" → npos.
[[nodiscard]] std::size_t script_path_length(std::string_view normalized_path, std::string_view extension);

// Whether `normalized_path` is `prefix` or below it, at a segment boundary: "/conf/" and "/conf" both cover "/conf"
// and "/conf/x", never "/conference" (--deny).
[[nodiscard]] bool is_under_prefix(std::string_view normalized_path, std::string_view prefix);

}  // namespace spawnd::server
