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

StaticFiles::StaticFiles(const std::string& root, SymlinkPolicy symlinks, std::vector<std::string> index_names)
    : root_(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)),
      symlinks_(symlinks),
      index_names_(std::move(index_names)) {
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

  Result<Fd> opened = open(path, O_RDONLY);
  if (!opened) return status_only(status_of(opened.error().value()));
  Fd file = std::move(*opened);
  struct stat st{};
  if (::fstat(file.get(), &st) != 0) return status_only(404);

  if (S_ISDIR(st.st_mode)) {
    if (path.back() != '/') {
      // A directory named without its trailing slash: redirect, so that relative links in its index work. The
      // Location comes from the normalised path, never from the raw one: "//evil.example/../docs" names our
      // /docs too, and echoing it would send a browser to evil.example (an open redirect).
      StaticResponse r = status_only(301);
      std::string location = encode_path(path) + "/";
      if (!request.query.empty()) location += "?" + request.query;
      r.fields.emplace_back("Location", location);
      return r;
    }
    // The first index name that is a regular file (--index; the Router has sent a script's to its gateway).
    const std::optional<std::string> index = find_index(path);
    if (!index) return status_only(404);
    opened = open(*index, O_RDONLY);
    if (!opened) return status_only(status_of(opened.error().value()));
    file = std::move(*opened);
    if (::fstat(file.get(), &st) != 0) return status_only(404);
    path = *index;
  }
  if (!S_ISREG(st.st_mode)) return status_only(404);
  // O_NONBLOCK (set so that opening a FIFO cannot hang the loop) has no effect on reading a regular file.

  // --precompressed: the representation (header comment). One open per acceptable coding, only for clients that
  // accept one.
  std::string_view coding;  // empty: the file itself (identity)
  if (const auto accept = request.field("Accept-Encoding"); accept && !precompressed_.empty()) {
    for (const ContentCoding& candidate : precompressed_) {
      if (coding_quality(*accept, candidate.name) == 0) continue;
      Result<Fd> sidecar = open(path + std::string(candidate.suffix), O_RDONLY);
      if (!sidecar) continue;
      struct stat sst{};
      if (::fstat(sidecar->get(), &sst) != 0 || !S_ISREG(sst.st_mode)) continue;
      if (sst.st_mtim.tv_sec < st.st_mtim.tv_sec ||
          (sst.st_mtim.tv_sec == st.st_mtim.tv_sec && sst.st_mtim.tv_nsec < st.st_mtim.tv_nsec))
        continue;  // older than the file: a leftover
      file = std::move(*sidecar);
      st = sst;
      coding = candidate.name;
      break;
    }
  }

  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::int64_t mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  std::string etag = make_etag(size, mtime_ns);
  if (!coding.empty()) etag.insert(etag.size() - 1, "-" + std::string(coding));  // "SIZE-MTIME-gzip"
  const std::string last_modified = format_http_date(st.st_mtim.tv_sec);

  Preconditions pre;
  pre.if_match = request.field("If-Match").value_or("");
  pre.if_none_match = request.field("If-None-Match").value_or("");
  pre.if_modified_since = request.field("If-Modified-Since").value_or("");
  pre.if_unmodified_since = request.field("If-Unmodified-Since").value_or("");

  StaticResponse r;
  r.fields.emplace_back("Last-Modified", last_modified);
  r.fields.emplace_back("ETag", etag);
  if (!precompressed_.empty()) r.fields.emplace_back("Vary", "Accept-Encoding");
  switch (evaluate_preconditions(request.method, pre, etag, st.st_mtim.tv_sec)) {
    case PreconditionResult::Proceed: break;
    case PreconditionResult::NotModified: r.status = 304; return r;
    case PreconditionResult::PreconditionFailed: {
      StaticResponse failed = status_only(412);
      return failed;
    }
  }
  r.fields.emplace_back("Content-Type", std::string(mime_type_for(path)));
  if (!coding.empty()) r.fields.emplace_back("Content-Encoding", std::string(coding));
  r.fields.emplace_back("Accept-Ranges", "bytes");
  r.length = size;

  auto range_field = request.field("Range");
  if (range_field && if_range_allows(request.field("If-Range").value_or(""), etag, st.st_mtim.tv_sec)) {
    ByteRange range;
    switch (parse_range(*range_field, size, range)) {
      case RangeStatus::Ignore: break;
      case RangeStatus::Satisfiable:
        r.status = 206;
        r.offset = range.first;
        r.length = range.length();
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
  r.file = std::move(file);
  return r;
}

}  // namespace spawnd::server
