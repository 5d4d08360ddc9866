// server/static_files.h — serving files below the document root (GET and HEAD).
//
// Decides the whole response for one request: status, fields, and either a small in-memory body (redirects, error
// pages) or an open file and a byte range that the connection sends with sendfile(2), so large files are never
// loaded into memory. Which symbolic links are followed is the SymlinkPolicy (--follow-symlinks); whatever it is, a
// request path cannot climb out of the root with ".." or name a dotfile (static_path.h). What a path resolved to is
// kept in an open-file cache (static_file_cache.h: its staleness bound), so a hot file costs no open/fstat/close.
// Runs on the loop thread; file-system calls are the blocking kind every static server makes (open, fstat), and a
// read of a small file's bytes (at most --static-cache-body-bytes) when the cache takes a snapshot of it.
//
// The Router asks the same object whether an extension-routed script exists (stat()) and which index file a
// directory has (find_index()), so that symlinks and index names mean the same for scripts as for files.
#pragma once

#include <sys/stat.h>

#include <array>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "server/content_coding.h"
#include "server/http_request.h"
#include "server/static_file_cache.h"

namespace spawnd::server {

// Which symbolic links under the document root are followed (--follow-symlinks). Every symlink in the path counts,
// directories included.
enum class SymlinkPolicy {
  Never,   // none: a path through any symlink is 403 (nginx `disable_symlinks on`)
  Owner,   // a link whose owner is the owner of what it points to (Apache SymLinksIfOwnerMatch, nginx
           // `disable_symlinks if_not_owner`); another link is 403. The default.
  Always,  // every link, wherever it points, also outside the root (Apache FollowSymLinks)
};
inline constexpr std::array<std::pair<std::string_view, SymlinkPolicy>, 3> kSymlinkPolicyNames{{
    {"never", SymlinkPolicy::Never}, {"owner", SymlinkPolicy::Owner}, {"always", SymlinkPolicy::Always}}};

struct StaticResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> fields;  // without Content-Length (the connection adds it)
  // When not empty, the whole field block of a plain 200 from `file` (StaticFile::head_fields, Content-Length
  // included), encoded once per file: used instead of `fields`. Points into *file.
  std::string_view encoded_fields;
  std::string body;                          // used when !file
  std::shared_ptr<const StaticFile> file;    // the representation to send (its snapshot or its open fd), or null
  std::uint64_t offset = 0;                  // first byte of the file to send
  std::uint64_t length = 0;                  // bytes of the file to send
};

class StaticFiles {
 public:
  // Opens the document root. `index_names`: the files a directory's URL ("/docs/") serves, tried in order
  // (--index). `cache`: the open-file cache's limits (static_file_cache.h; max_entries 0: none). Throws
  // spawnd::Error if the root is not a readable directory.
  explicit StaticFiles(const std::string& root, SymlinkPolicy symlinks = SymlinkPolicy::Owner,
                       std::vector<std::string> index_names = {"index.html"}, StaticCacheConfig cache = {});

  // Serves a precompressed sidecar for each of `codings` (--precompressed, content_coding.h), in that order of
  // preference; empty (the default): none. Call before serve().
  void set_precompressed(std::vector<ContentCoding> codings) { precompressed_ = std::move(codings); }

  // Answers `request` (any method; non-GET/HEAD → 405 with Allow). Never throws for a bad request; every failure
  // is a status: 400, 403 (no permission, or a symlink the policy refuses), 404, 405, 412, 416, 301 (directory
  // without trailing '/'), 304, 206 or 200.
  //
  // With precompressed codings, a file's representation is chosen first (RFC 9110 §12.5.3): the first coding of
  // the list that the request's Accept-Encoding accepts (q > 0, or "*" with q > 0) and whose sidecar (FILE.br,
  // FILE.gz, FILE.zst) is a regular file at least as new as FILE (an older one is a leftover of a previous FILE:
  // ignored, where nginx's gzip_static would serve it). That representation is then served as any file is, with
  // its own length, ETag (the file's, with "-CODING" appended inside the quotes), Last-Modified, ranges and
  // preconditions, plus "Content-Encoding: CODING" and the Content-Type of FILE. Without an Accept-Encoding field
  // the file is served as it is (the RFC would allow any coding; browsers always send the field). Every 200, 206 and
  // 304 from a server with precompressed codings carries "Vary: Accept-Encoding", the identity ones too: another
  // Accept-Encoding may get another representation. Sidecars stay reachable by their own names, as plain files.
  //
  // With the cache (static_file_cache.h), what a path resolves to (file, directory, error) may be up to
  // --static-cache-valid old; the response is always one consistent version of the file.
  [[nodiscard]] StaticResponse serve(const Request& request) const;

  // Opens `normalized_path` (normalize_request_path()'s output: "/a/b", "/" for the root) with `flags` (O_RDONLY or
  // O_PATH; O_CLOEXEC is added), following symlinks as the policy allows. Errors: ELOOP if a symlink on the way is
  // refused (403), EACCES (403), ENOENT or ENOTDIR (404), or another errno.
  [[nodiscard]] Result<Fd> open(std::string_view normalized_path, int flags) const;
  // The status of the file `normalized_path` names, through open(); the same errors.
  [[nodiscard]] Result<struct stat> stat(std::string_view normalized_path) const;
  // For a directory's path ending in '/' ("/docs/"), the path of its first index name that is a regular file
  // ("/docs/index.php"), or nullopt if none is (or the path is no directory).
  [[nodiscard]] std::optional<std::string> find_index(std::string_view directory_path) const;

 private:
  // The SymlinkPolicy::Owner walk, one path segment at a time (open() tries the no-symlink case in one call first).
  [[nodiscard]] Result<Fd> open_if_owner_matches(std::string_view relative, int flags) const;

  // A path as the file system resolves it now: status 200 with the open regular file, its stat and the path it was
  // found at (a directory's index file for a path ending in '/'); or 301 (a directory named without its '/'), 403 or
  // 404. With a non-empty `suffix` (a sidecar: path + ".gz"), only a regular file at exactly that name is a 200.
  struct Opened {
    int status = 404;
    Fd fd;
    struct stat st{};
    std::string path;
  };
  [[nodiscard]] Opened open_resolved(std::string_view path, std::string_view suffix) const;
  // What `path` (+ `suffix`, served with content coding `coding`) resolves to, from the cache when its entry is
  // still valid (the cache header's rules), else from open_resolved(). `tag`: the representation's key prefix.
  [[nodiscard]] ResolvedPath resolve(char tag, std::string_view path, std::string_view suffix,
                                     std::string_view coding) const;
  // The StaticFile of an Opened 200: validators and head computed; with `may_snapshot`, a small file's bytes read
  // into memory (its fd then closed).
  [[nodiscard]] std::shared_ptr<const StaticFile> make_file(Opened opened, std::string_view coding,
                                                            bool may_snapshot) const;

  Fd root_;
  SymlinkPolicy symlinks_;
  std::vector<std::string> index_names_;
  std::vector<ContentCoding> precompressed_;
  // Logically const: serve() answers the same with or without it, within the staleness bound.
  mutable StaticFileCache cache_;
};

// A small HTML page for an error status, e.g. "<h1>404 Not Found</h1>".
[[nodiscard]] std::string error_page(int status);

}  // namespace spawnd::server
