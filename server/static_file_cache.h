// server/static_file_cache.h — the open-file cache of one StaticFiles (--static-cache-entries, --static-cache-valid,
// --static-cache-body-bytes), what nginx's open_file_cache and lighttpd's stat cache keep: for each recently served
// path, what it resolved to (a regular file, a directory to redirect to, or an error status), so that a hot file
// costs no openat, fstat or close, and its response head is built once.
//
// The cache only stores and evicts; StaticFiles (static_files.h) decides what an entry holds and when it is checked
// again. The staleness bound it implements with it:
//   - an entry is trusted for --static-cache-valid after it was last checked; then the path is resolved again (open
//     + fstat, index names, symlink policy) and compared by (st_dev, st_ino, st_size, st_mtim, st_ctim, resolved
//     path): unchanged, the entry is trusted for another interval; changed (written, replaced by rename, deleted,
//     turned into a directory), it is rebuilt from what the path is now. So a change is served at most that long
//     after it happened;
//   - a small file (at most --static-cache-body-bytes) is kept as a snapshot of its bytes, read between two fstat()
//     calls that agree, so its head and body always come from one version of the file;
//   - a larger file is kept open and sent with sendfile(2); every response from it first fstat()s the open file, so
//     a write in place shows at once, not after the interval (a file replaced by rename keeps sending its old
//     inode, whole and consistent, until the interval ends).
//
// Bounds: at most max_entries entries, least recently used evicted first; only entries of larger files hold an fd,
// so the cache holds at most max_entries fds (plus one per response still being sent from an evicted entry: each
// response shares its entry's StaticFile), and at most max_entries × max_body_bytes bytes of snapshots.
//
// Ownership: one cache per StaticFiles, so one per site and configuration generation; a reload (SIGHUP) starts
// empty. Loop thread only.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/fd.h"

namespace spawnd::server {

struct StaticCacheConfig {
  std::size_t max_entries = 1024;          // --static-cache-entries: entries kept; 0: no cache
  std::int64_t valid_ms = 1000;            // --static-cache-valid: how long an entry is trusted unchecked
  std::size_t max_body_bytes = 16 * 1024;  // --static-cache-body-bytes: files up to this size are kept in memory
};

// One representation of a regular file, ready to send: what it is (stat), its validators and fields computed once,
// and its bytes (a snapshot, or an open file). Immutable once made; shared by the cache and by the responses that
// send it, so an entry evicted or replaced while a response still sends from it stays alive until that one is done.
struct StaticFile {
  struct stat st{};               // of the file sent (a sidecar's own for a precompressed representation)
  std::string path;               // the normalised path it was found at, e.g. "/docs/index.html" (without sidecar suffix)
  Fd fd;                          // open for reading; empty when is_in_memory
  bool is_in_memory = false;      // `content` holds the whole file
  std::string content;            // the snapshot when is_in_memory
  std::string_view coding;        // the content coding of a precompressed sidecar ("gzip"); empty: the file itself
  std::string etag;               // RFC 9110 §8.8.3, with "-CODING" inside the quotes for a sidecar
  std::string last_modified;      // IMF-fixdate of st_mtim
  std::string_view content_type;  // of `path` (mime.h), static storage
  // The fields of a plain 200 response, encoded: "Last-Modified: ...\r\nETag: ...\r\n[Vary: Accept-Encoding\r\n]
  // Content-Type: ...\r\n[Content-Encoding: ...\r\n]Accept-Ranges: bytes\r\nContent-Length: N\r\n".
  std::string head_fields;
};

// What a normalised request path resolves to under the document root.
struct ResolvedPath {
  int status = 404;  // 200: a regular file (`file`); 301: a directory named without its trailing '/'; 403, 404
  std::shared_ptr<const StaticFile> file;
};

// True if `a` and `b` describe the same version of the same file: device, inode, size, modification and change
// times to the nanosecond. A rename onto the path gives another inode; a write in place changes size or times.
[[nodiscard]] bool is_same_version(const struct stat& a, const struct stat& b) noexcept;

class StaticFileCache {
 public:
  struct Entry {
    ResolvedPath value;
    std::int64_t checked_ms = 0;  // monotonic time the value was last resolved or confirmed
  };

  explicit StaticFileCache(StaticCacheConfig config) : config_(config) {}

  [[nodiscard]] const StaticCacheConfig& config() const noexcept { return config_; }
  [[nodiscard]] bool is_enabled() const noexcept { return config_.max_entries > 0; }
  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }

  // The entry of `key`, made the most recently used; nullptr if there is none. Valid until the next insert().
  [[nodiscard]] Entry* find(const std::string& key);
  // Stores `value` under `key` (replacing one there), the most recently used, evicting the least recently used
  // beyond max_entries. Returns the entry. Call only when is_enabled().
  Entry& insert(const std::string& key, ResolvedPath value, std::int64_t now_ms);

 private:
  struct Node {
    std::string key;
    Entry entry;
  };
  StaticCacheConfig config_;
  std::list<Node> lru_;  // front: most recently used
  std::unordered_map<std::string_view, std::list<Node>::iterator> map_;  // keys point into the nodes
};

}  // namespace spawnd::server
