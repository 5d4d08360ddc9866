#include "server/static_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "common/error.h"
#include "common/http_status.h"
#include "common/sys.h"
#include "server/conditional.h"
#include "server/event_loop.h"
#include "server/http_date.h"
#include "server/mime.h"
#include "server/range.h"
#include "server/static_path.h"

namespace spawnd::server {

namespace {

// openat2(2) has no glibc wrapper before 2.39. `resolve`: RESOLVE_* flags.
int open_at2(int dirfd, const char* rel, int flags, std::uint64_t resolve) {
  open_how how{};
  // O_NONBLOCK: opening a FIFO cannot hang the loop. openat2 refuses any flag but O_CLOEXEC, O_DIRECTORY and
  // O_NOFOLLOW beside O_PATH (EINVAL).
  const int extra = (flags & O_PATH) != 0 ? O_CLOEXEC : O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.flags = static_cast<std::uint64_t>(flags | extra);
  how.resolve = resolve;
  return static_cast<int>(sys::retry_eintr([&] { return ::syscall(SYS_openat2, dirfd, rel, &how, sizeof how); }));
}

// The cache key prefix of the file itself; a precompressed representation's is the digit of its coding's place in
// the --precompressed list.
constexpr char kIdentityTag = 'i';

// The errno of a refused path as a status: a symlink the policy refuses (ELOOP) or no permission → 403, else 404.
int status_of(int err) { return err == ELOOP || err == EACCES ? 403 : 404; }

// A normalised path (as normalize_request_path() makes it: decoded, starting with '/', without empty, "." or ".."
// segments) percent-encoded for a Location field: every byte but RFC 3986 pchar and '/' is encoded, so the
// result is a path-absolute reference that cannot name another host.
std::string encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  static constexpr std::string_view kKeep = "-._~!$&'()*+,;=:@/";
  std::string out;
  out.reserve(path.size());
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        kKeep.find(ch) != std::string_view::npos) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
  return out;
}

StaticResponse status_only(int status) {
  StaticResponse r;
  r.status = status;
  r.body = error_page(status);
  r.fields.emplace_back("Content-Type", "text/html; charset=utf-8");
  return r;
}

}  // namespace

std::string error_page(int status) {
  std::string code = std::to_string(status);
  std::string reason = reason_phrase(status);
  return "<!DOCTYPE html>\n<html><head><title>" + code + " " + reason + "</title></head>\n<body><h1>" + code + " " +
         reason + "</h1><hr><p>spawnd</p></body></html>\n";
}

StaticFiles::StaticFiles(const std::string& root, SymlinkPolicy symlinks, std::vector<std::string> index_names,
                         StaticCacheConfig cache)
    : root_(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)),
      symlinks_(symlinks),
      index_names_(std::move(index_names)),
      cache_(cache) {
  if (!root_) throw Error(errno, "document root " + root);
}

Result<Fd> StaticFiles::open(std::string_view normalized_path, int flags) const {
  // openat2 wants a relative path; "/" is the root itself. The path has no "." or ".." segments (static_path.h).
  const std::string rel = normalized_path.size() > 1 ? std::string(normalized_path.substr(1)) : std::string(".");
  // No symlink on the way: the one call that serves nearly every request, whatever the policy.
  Fd fd(open_at2(root_.get(), rel.c_str(), flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS));
  if (fd) return fd;
  if (errno != ELOOP || symlinks_ == SymlinkPolicy::Never) return errno_code();
  if (symlinks_ == SymlinkPolicy::Owner) return open_if_owner_matches(rel, flags);
  // Always: wherever the links point (the path itself still cannot climb out: it has no "..").
  fd.reset(open_at2(root_.get(), rel.c_str(), flags, RESOLVE_NO_MAGICLINKS));
  if (!fd) return errno_code();
  return fd;
}

Result<Fd> StaticFiles::open_if_owner_matches(std::string_view relative, int flags) const {
  // Segment by segment from the root: a segment that is a symlink is followed only if the link's owner owns what it
  // points to (the whole chain resolved, as stat(2) sees it). Another process could swap a checked link before the
  // open that follows it; the policy protects against links users leave in a tree, not against a race with a
  // writer of the tree (as in Apache and nginx).
  Fd dir;
  int at = root_.get();
  std::size_t pos = 0;
  for (;;) {
    const std::size_t slash = relative.find('/', pos);
    const bool is_last = slash == std::string_view::npos;
    const std::string segment(relative.substr(pos, is_last ? std::string_view::npos : slash - pos));
    struct stat link{};
    if (::fstatat(at, segment.c_str(), &link, AT_SYMLINK_NOFOLLOW) != 0) return errno_code();
    if (S_ISLNK(link.st_mode)) {
      struct stat target{};
      if (::fstatat(at, segment.c_str(), &target, 0) != 0) return errno_code();
      if (target.st_uid != link.st_uid) return errno_code(ELOOP);
    }
    Fd next(open_at2(at, segment.c_str(), is_last ? flags : O_PATH | O_DIRECTORY, RESOLVE_NO_MAGICLINKS));
    if (!next) return errno_code();
    if (is_last) return next;
    dir = std::move(next);
    at = dir.get();
    pos = slash + 1;
  }
}

Result<struct stat> StaticFiles::stat(std::string_view normalized_path) const {
  Result<Fd> fd = open(normalized_path, O_PATH);
  if (!fd) return fd.error();
  struct stat st{};
  if (::fstat(fd->get(), &st) != 0) return errno_code();
  return st;
}

std::optional<std::string> StaticFiles::find_index(std::string_view directory_path) const {
  if (directory_path.empty() || directory_path.back() != '/') return std::nullopt;
  for (const std::string& name : index_names_) {
    std::string path = std::string(directory_path) + name;
    Result<struct stat> st = stat(path);
    if (st && S_ISREG(st->st_mode)) return path;
  }
  return std::nullopt;
}

StaticFiles::Opened StaticFiles::open_resolved(std::string_view path, std::string_view suffix) const {
  Opened o;
  o.path = std::string(path) + std::string(suffix);
  Result<Fd> opened = open(o.path, O_RDONLY);
  if (!opened) {
    o.status = status_of(opened.error().value());
    return o;
  }
  o.fd = std::move(*opened);
  if (::fstat(o.fd.get(), &o.st) != 0) return Opened{};
  if (S_ISDIR(o.st.st_mode) && suffix.empty()) {
    // A directory named without its trailing slash: serve() redirects, so that relative links in its index work.
    if (o.path.back() != '/') return Opened{301, Fd(), {}, std::move(o.path)};
    // The first index name that is a regular file (--index; the Router has sent a script's to its gateway).
    std::optional<std::string> index = find_index(o.path);
    if (!index) return Opened{};
    opened = open(*index, O_RDONLY);
    if (!opened) return Opened{status_of(opened.error().value()), Fd(), {}, {}};
    o.fd = std::move(*opened);
    if (::fstat(o.fd.get(), &o.st) != 0) return Opened{};
    o.path = std::move(*index);
  }
  if (!S_ISREG(o.st.st_mode)) return Opened{};
  // O_NONBLOCK (set so that opening a FIFO cannot hang the loop) has no effect on reading a regular file.
  o.status = 200;
  return o;
}

std::shared_ptr<const StaticFile> StaticFiles::make_file(Opened opened, std::string_view coding,
                                                         bool may_snapshot) const {
  auto f = std::make_shared<StaticFile>();
  f->st = opened.st;
  f->coding = coding;
  f->path = std::move(opened.path);
  const auto size = static_cast<std::uint64_t>(f->st.st_size);
  const std::int64_t mtime_ns =
      static_cast<std::int64_t>(f->st.st_mtim.tv_sec) * 1'000'000'000 + f->st.st_mtim.tv_nsec;
  f->etag = make_etag(size, mtime_ns);
  if (!coding.empty()) f->etag.insert(f->etag.size() - 1, "-" + std::string(coding));  // "SIZE-MTIME-gzip"
  f->last_modified = format_http_date(f->st.st_mtim.tv_sec);
  f->content_type = mime_type_for(f->path);

  if (may_snapshot && size > 0 && size <= cache_.config().max_body_bytes) {
    // The bytes of one version: a write between the two fstat() calls changes size or times, and then the file is
    // sent from its fd instead (checked again before every response).
    std::string bytes(size, '\0');
    std::size_t got = 0;
    while (got < size) {
      const ssize_t n = sys::retry_eintr(
          [&] { return ::pread(opened.fd.get(), bytes.data() + got, size - got, static_cast<off_t>(got)); });
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    struct stat after{};
    if (got == size && ::fstat(opened.fd.get(), &after) == 0 && is_same_version(after, f->st)) {
      f->content = std::move(bytes);
      f->is_in_memory = true;
    }
  }
  if (!f->is_in_memory) f->fd = std::move(opened.fd);

  std::string& h = f->head_fields;
  h.reserve(160);
  h += "Last-Modified: ";
  h += f->last_modified;
  h += "\r\nETag: ";
  h += f->etag;
  if (!precompressed_.empty()) h += "\r\nVary: Accept-Encoding";
  h += "\r\nContent-Type: ";
  h += f->content_type;
  if (!coding.empty()) {
    h += "\r\nContent-Encoding: ";
    h += coding;
  }
  h += "\r\nAccept-Ranges: bytes\r\nContent-Length: ";
  h += std::to_string(size);
  h += "\r\n";
  return f;
}

ResolvedPath StaticFiles::resolve(char tag, std::string_view path, std::string_view suffix,
                                  std::string_view coding) const {
  auto to_resolved = [&](Opened o, bool may_snapshot) {
    ResolvedPath r{o.status, nullptr};
    if (o.status != 200) return r;
    if (!suffix.empty()) o.path.resize(path.size());  // a sidecar's type is its file's: "/style.css"
    r.file = make_file(std::move(o), coding, may_snapshot);
    return r;
  };
  if (!cache_.is_enabled()) return to_resolved(open_resolved(path, suffix), false);

  const std::int64_t now = monotonic_ms();
  std::string key;
  key.reserve(path.size() + 1);
  key += tag;
  key += path;
  StaticFileCache::Entry* entry = cache_.find(key);
  if (entry != nullptr) {
    bool is_valid = now - entry->checked_ms < cache_.config().valid_ms;
    const StaticFile* file = entry->value.file.get();
    if (is_valid && file != nullptr && !file->is_in_memory) {
      // Sent from its fd: a write in place would change the bytes under the head, so look at the open file first.
      struct stat st{};
      is_valid = ::fstat(file->fd.get(), &st) == 0 && is_same_version(st, file->st);
    }
    if (is_valid) return entry->value;
  }
  Opened now_opened = open_resolved(path, suffix);
  if (entry != nullptr && entry->value.status == now_opened.status) {
    const StaticFile* file = entry->value.file.get();
    // Unchanged (same status; for a file, the same version at the same path): trusted for another interval, and
    // the fd just opened is closed.
    if (file == nullptr || (is_same_version(file->st, now_opened.st) &&
                            (!suffix.empty() || file->path == now_opened.path))) {
      entry->checked_ms = now;
      return entry->value;
    }
  }
  return cache_.insert(key, to_resolved(std::move(now_opened), true), now).value;
}

StaticResponse StaticFiles::serve(const Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    StaticResponse r = status_only(405);
    r.fields.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  std::string path;
  switch (normalize_request_path(request.path, path)) {
    case PathStatus::Ok: break;
    case PathStatus::BadRequest: return status_only(400);
    case PathStatus::NotFound: return status_only(404);
  }

  ResolvedPath resolved = resolve(kIdentityTag, path, "", "");
  if (resolved.status == 301) {
    // The Location comes from the normalised path, never from the raw one: "//evil.example/../docs" names our
    // /docs too, and echoing it would send a browser to evil.example (an open redirect).
    StaticResponse r = status_only(301);
    std::string location = encode_path(path) + "/";
    if (!request.query.empty()) location += "?" + request.query;
    r.fields.emplace_back("Location", location);
    return r;
  }
  if (resolved.status != 200) return status_only(resolved.status);
  std::shared_ptr<const StaticFile> file = std::move(resolved.file);

  // --precompressed: the representation (header comment). One open per acceptable coding (or a cache lookup), only
  // for clients that accept one.
  if (const auto accept = request.field("Accept-Encoding"); accept && !precompressed_.empty()) {
    for (std::size_t i = 0; i < precompressed_.size(); ++i) {
      const ContentCoding& candidate = precompressed_[i];
      if (coding_quality(*accept, candidate.name) == 0) continue;
      ResolvedPath sidecar = resolve(static_cast<char>('0' + i), file->path, candidate.suffix, candidate.name);
      if (sidecar.status != 200) continue;
      const struct stat& sst = sidecar.file->st;
      const struct stat& st = file->st;
      if (sst.st_mtim.tv_sec < st.st_mtim.tv_sec ||
          (sst.st_mtim.tv_sec == st.st_mtim.tv_sec && sst.st_mtim.tv_nsec < st.st_mtim.tv_nsec))
        continue;  // older than the file: a leftover
      file = std::move(sidecar.file);
      break;
    }
  }

  const auto size = static_cast<std::uint64_t>(file->st.st_size);
  const std::time_t mtime = file->st.st_mtim.tv_sec;
  Preconditions pre;
  pre.if_match = request.field("If-Match").value_or("");
  pre.if_none_match = request.field("If-None-Match").value_or("");
  pre.if_modified_since = request.field("If-Modified-Since").value_or("");
  pre.if_unmodified_since = request.field("If-Unmodified-Since").value_or("");

  StaticResponse r;
  auto add_validators = [&] {
    r.fields.emplace_back("Last-Modified", file->last_modified);
    r.fields.emplace_back("ETag", file->etag);
    if (!precompressed_.empty()) r.fields.emplace_back("Vary", "Accept-Encoding");
  };
  switch (evaluate_preconditions(request.method, pre, file->etag, mtime)) {
    case PreconditionResult::Proceed: break;
    case PreconditionResult::NotModified:
      r.status = 304;
      add_validators();
      return r;
    case PreconditionResult::PreconditionFailed: return status_only(412);
  }
  r.length = size;

  auto range_field = request.field("Range");
  if (range_field && if_range_allows(request.field("If-Range").value_or(""), file->etag, mtime)) {
    ByteRange range;
    switch (parse_range(*range_field, size, range)) {
      case RangeStatus::Ignore: break;
      case RangeStatus::Satisfiable:
        r.status = 206;
        r.offset = range.first;
        r.length = range.length();
        add_validators();
        r.fields.emplace_back("Content-Type", std::string(file->content_type));
        if (!file->coding.empty()) r.fields.emplace_back("Content-Encoding", std::string(file->coding));
        r.fields.emplace_back("Accept-Ranges", "bytes");
        r.fields.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                   std::to_string(range.last) + "/" + std::to_string(size));
        break;
      case RangeStatus::Unsatisfiable: {
        StaticResponse u = status_only(416);
        u.fields.emplace_back("Content-Range", "bytes */" + std::to_string(size));
        return u;
      }
    }
  }
  if (r.status == 200) r.encoded_fields = file->head_fields;
  r.file = std::move(file);
  return r;
}

}  // namespace spawnd::server
