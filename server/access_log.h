// server/access_log.h — one line per response in the Combined Log Format (Apache's "combined"):
//   127.0.0.1 - - [21/Nov/2026:05:25:27 +0000] "GET /index.html HTTP/1.1" 200 1043 "-" "curl/7.88.1"
//
// Lines are collected in memory and written with one write(2) per loop turn (flush() from the loop's before-sleep
// point) or when 64 KiB have gathered, so logging costs no syscall per request. Loop thread only.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

#include "common/fd.h"
#include "server/http_request.h"

namespace spawnd::server {

class AccessLog {
 public:
  // `destination` is "-" for stdout or a path opened for appending; `is_enabled` false drops every line.
  // Throws spawnd::Error if the file cannot be opened.
  AccessLog(const std::string& destination, bool is_enabled);
  ~AccessLog();

  // Records one response: `status` sent and `body_bytes` of message body sent (the %b field: "-" when 0).
  void record(const Request& request, int status, std::uint64_t body_bytes);
  // Writes what is buffered. Failures are reported once on the error log, never thrown.
  void flush() noexcept;
  [[nodiscard]] bool is_enabled() const noexcept { return is_enabled_; }

 private:
  Fd file_;
  int fd_ = -1;
  bool is_enabled_;
  bool has_reported_failure_ = false;
  std::string buf_;
  std::time_t cached_second_ = 0;
  std::string cached_time_;  // "[21/Nov/2026:05:25:27 +0000]"
};

}  // namespace spawnd::server
