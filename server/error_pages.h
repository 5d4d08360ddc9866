// server/error_pages.h — custom bodies for the error responses spawnd makes itself (--error-pages DIR).
//
// DIR holds NNN.html files (404.html, 502.html, ...; any status from 400 to 599). Where spawnd answers an error of
// its own making (the static files' 403/404/405/412/416, a script that does not exist, a gateway's 500/502/503/504,
// a request that does not parse: 400/408/413/414/431/501), the body is that file, sent as text/html with the same
// status and the same other fields (Retry-After, Allow, Content-Range); a status without a file keeps the built-in
// page (error_page(), static_files.h). A response a handler made itself is never replaced, whatever its status
// (nginx without fastcgi_intercept_errors). The files are read once, at start-up, so a page costs no file-system
// call when it is sent; each may be at most kMaxPageBytes.
//
// A value type: a site owns its ErrorPages (today the one server's). Read-only after load(), loop thread.
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace spawnd::server {

class ErrorPages {
 public:
  // The largest page read, bytes: a page is a whole response body held in memory and copied into each response.
  static constexpr std::size_t kMaxPageBytes = 64 * 1024;

  // No custom pages: every status keeps the built-in page.
  ErrorPages() = default;
  // Reads every regular file of `directory` named NNN.html with NNN from 400 to 599 (other names are ignored).
  // Throws spawnd::ConfigError naming the file if the directory cannot be read, or a page cannot be read or is
  // larger than kMaxPageBytes.
  [[nodiscard]] static ErrorPages load(const std::string& directory);

  // The custom page for `status`, or nullptr.
  [[nodiscard]] const std::string* find(int status) const noexcept {
    auto it = pages_.find(status);
    return it == pages_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] std::size_t size() const noexcept { return pages_.size(); }

 private:
  std::map<int, std::string> pages_;
};

// The Content-Type of a custom page.
inline constexpr const char* kErrorPageContentType = "text/html";

}  // namespace spawnd::server
