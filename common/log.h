// common/log.h — the error log: one line per event on stderr, "spawnd: <level>: <message>".
//
// printf-style, so that a log call on a failure path allocates nothing before it formats. Thread-safe (one write(2)
// per line). The access log (Combined Log Format) is separate: server/access_log.h.
#pragma once

namespace spawnd::log {

enum class Level { Error, Warn, Info, Debug };

// Lines above this level are dropped. Default Info.
void set_level(Level level) noexcept;
[[nodiscard]] bool enabled(Level level) noexcept;

void write(Level level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace spawnd::log

#define SPAWND_LOG_ERROR(...) ::spawnd::log::write(::spawnd::log::Level::Error, __VA_ARGS__)
#define SPAWND_LOG_WARN(...) ::spawnd::log::write(::spawnd::log::Level::Warn, __VA_ARGS__)
#define SPAWND_LOG_INFO(...) ::spawnd::log::write(::spawnd::log::Level::Info, __VA_ARGS__)
#define SPAWND_LOG_DEBUG(...)                                                                  \
  do {                                                                                         \
    if (::spawnd::log::enabled(::spawnd::log::Level::Debug))                                   \
      ::spawnd::log::write(::spawnd::log::Level::Debug, __VA_ARGS__);                          \
  } while (0)
