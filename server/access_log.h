// server/access_log.h — one line per response in the Combined Log Format (Apache's "combined"):
//   127.0.0.1 - - [21/Nov/2026:05:25:27 +0000] "GET /index.html HTTP/1.1" 200 1043 "-" "curl/7.88.1"
// or, when the configuration has virtual hosts ([[site]] tables), in Apache's "vhost_combined" (%v:%p first: the
// site's first host name, "-" for the default site, and the port the request came to):
//   example.org:80 127.0.0.1 - - [21/Nov/2026:05:25:27 +0000] "GET / HTTP/1.1" 200 1043 "-" "curl/7.88.1"
// A request that came over HTTPS has one more field at the end, its TLS version (mod_ssl's %{SSL_PROTOCOL}x):
//   127.0.0.1 - - [21/Nov/2026:05:25:27 +0000] "GET / HTTP/1.1" 200 1043 "-" "curl/7.88.1" TLSv1.3
//
// Lines are collected in memory and written with one write(2) kFlushDelayMs after the first line not yet written, or
// as soon as 64 KiB have gathered, so logging costs no syscall per request. The flush timer is armed only while there
// are lines to write: an idle server is not woken for its log. Loop thread only.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "server/event_loop.h"
#include "server/http_request.h"

namespace spawnd::server {

class AccessLog {
 public:
  // How long a recorded line may wait in memory before it is written.
  static constexpr std::int64_t kFlushDelayMs = 200;

  // `destination` is "-" for stdout or a path opened for appending; `is_enabled` false drops every line. `loop` runs
  // the flush timer and must outlive the AccessLog. Throws spawnd::Error if the file cannot be opened.
  AccessLog(EventLoop& loop, const std::string& destination, bool is_enabled);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Records one response to a request for `site` (Site::name(); used with set_virtual_hosts(true)): `status` sent
  // and `body_bytes` of message body sent (the %b field: "-" when 0).
  void record(const Request& request, std::string_view site, int status, std::uint64_t body_bytes);
  // true: vhost_combined lines from now on; false: combined.
  void set_virtual_hosts(bool is_on) noexcept { has_virtual_hosts_ = is_on; }
  // Flushes, then writes to `destination` (as the constructor takes it) from now on: the file is opened anew, so
  // that after logrotate renamed it the next lines go to a new file. If it cannot be opened, logs why and keeps
  // the old one.
  void reopen(const std::string& destination);
  // Writes what is buffered and disarms the flush timer. Failures are reported once on the error log, never thrown.
  void flush() noexcept;
  [[nodiscard]] bool is_enabled() const noexcept { return is_enabled_; }

 private:
  EventLoop& loop_;
  EventLoop::TimerId flush_timer_ = 0;  // armed while buf_ holds lines; 0: none
  Fd file_;
  int fd_ = -1;
  bool is_enabled_;
  bool has_virtual_hosts_ = false;
  bool has_reported_failure_ = false;
  std::string buf_;
  std::time_t cached_second_ = 0;
  std::string cached_time_;  // "[21/Nov/2026:05:25:27 +0000]"
};

}  // namespace spawnd::server
