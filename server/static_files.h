// server/static_files.h — serving files below the document root (GET and HEAD).
//
// Decides the whole response for one request: status, fields, and either a small in-memory body (redirects, error
// pages) or an open file and a byte range that the connection sends with sendfile(2), so large files are never
// loaded into memory. Symlinks are followed only while they stay below the root (openat2 with RESOLVE_BENEATH);
// anything else is 404. Runs on the loop thread; file-system calls are the blocking kind every static server
// makes (open, fstat), never reads of file contents.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "server/http_request.h"

namespace spawnd::server {

struct StaticResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> fields;  // without Content-Length (the connection adds it)
  std::string body;                                         // used when !file
  Fd file;                                                  // the file to send, or empty
  std::uint64_t offset = 0;                                 // first byte of the file to send
  std::uint64_t length = 0;                                 // bytes of the file to send
};

class StaticFiles {
 public:
  // Opens the document root. Throws spawnd::Error if it is not a readable directory.
  explicit StaticFiles(const std::string& root);

  // Answers `request` (any method; non-GET/HEAD → 405 with Allow). Never throws for a bad request; every failure
  // is a status: 400, 403, 404, 405, 412, 416, 301 (directory without trailing '/'), 304, 206 or 200.
  [[nodiscard]] StaticResponse serve(const Request& request) const;

 private:
  Fd root_;
};

// A small HTML page for an error status, e.g. "<h1>404 Not Found</h1>".
[[nodiscard]] std::string error_page(int status);

}  // namespace spawnd::server
