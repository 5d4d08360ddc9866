#include "log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace spawnd::log {

namespace {
std::atomic<Level> g_level{Level::Info};

const char* level_name(Level level) {
  switch (level) {
    case Level::Error: return "error";
    case Level::Warn: return "warning";
    case Level::Info: return "info";
    case Level::Debug: return "debug";
  }
  return "?";
}
}  // namespace

void set_level(Level level) noexcept { g_level.store(level, std::memory_order_relaxed); }

bool enabled(Level level) noexcept { return level <= g_level.load(std::memory_order_relaxed); }

void write(Level level, const char* fmt, ...) noexcept {
  if (!enabled(level)) return;
  char line[2048];
  int n = std::snprintf(line, sizeof line, "spawnd: %s: ", level_name(level));
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  // One write per line so that lines from threads and children never interleave mid-line.
  [[maybe_unused]] ssize_t rc = ::write(STDERR_FILENO, line, len);
}

}  // namespace spawnd::log
