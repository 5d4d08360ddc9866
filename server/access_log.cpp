#include "server/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "common/sys.h"

namespace spawnd::server {

namespace {
// Quoted fields of the log line: escape '"', '\' and control bytes so that a hostile header cannot forge lines.
void append_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}
}  // namespace

AccessLog::AccessLog(EventLoop& loop, const std::string& destination, bool is_enabled)
    : loop_(loop), is_enabled_(is_enabled) {
  if (!is_enabled_) return;
  if (destination == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    file_.reset(::open(destination.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!file_) throw Error(errno, "access log " + destination);
    fd_ = file_.get();
  }
}

AccessLog::~AccessLog() { flush(); }

void AccessLog::reopen(const std::string& destination) {
  if (!is_enabled_) return;
  flush();
  if (destination == "-") {
    file_.reset();
    fd_ = STDOUT_FILENO;
    return;
  }
  Fd file(::open(destination.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!file) {
    SPAWND_LOG_ERROR("access log %s: %s: still writing to the old file", destination.c_str(), std::strerror(errno));
    return;
  }
  file_ = std::move(file);
  fd_ = file_.get();
  has_reported_failure_ = false;
}

void AccessLog::record(const Request& request, std::string_view site, int status, std::uint64_t body_bytes) {
  if (!is_enabled_) return;
  std::time_t now = std::time(nullptr);
  if (now != cached_second_) {
    cached_second_ = now;
    std::tm tm{};
    ::localtime_r(&now, &tm);
    char t[64];
    std::strftime(t, sizeof t, "[%d/%b/%Y:%H:%M:%S %z]", &tm);
    cached_time_ = t;
  }
  if (has_virtual_hosts_) {
    buf_ += net::join_host_port(site, request.local_port);
    buf_ += ' ';
  }
  buf_ += request.remote_addr;
  buf_ += " - - ";
  buf_ += cached_time_;
  buf_ += ' ';
  if (request.method.empty()) {
    // The head never parsed (400, 408, 413, 414, 431 before a request existed): there is no request line to
    // show, so log "-" as Apache does, not a line made of empty parts.
    buf_ += "\"-\"";
  } else {
    append_quoted(buf_, request.method + " " + request.target + " " + request.protocol());
  }
  buf_ += ' ';
  buf_ += std::to_string(status);
  buf_ += ' ';
  buf_ += body_bytes == 0 ? std::string("-") : std::to_string(body_bytes);
  buf_ += ' ';
  append_quoted(buf_, request.field("Referer").value_or("-"));
  buf_ += ' ';
  append_quoted(buf_, request.field("User-Agent").value_or("-"));
  if (request.tls_protocol != nullptr) {
    buf_ += ' ';
    buf_ += request.tls_protocol;
  }
  buf_ += '\n';
  if (buf_.size() >= 64 * 1024) {
    flush();
  } else if (flush_timer_ == 0) {
    flush_timer_ = loop_.add_timer(kFlushDelayMs, [this] {
      flush_timer_ = 0;
      flush();
    });
  }
}

void AccessLog::flush() noexcept {
  if (flush_timer_ != 0) {
    loop_.cancel(flush_timer_);
    flush_timer_ = 0;
  }
  if (buf_.empty()) return;
  if (!sys::write_all(fd_, buf_.data(), buf_.size()) && !has_reported_failure_) {
    has_reported_failure_ = true;
    SPAWND_LOG_ERROR("access log: write failed: %s", std::strerror(errno));
  }
  buf_.clear();
}

}  // namespace spawnd::server
