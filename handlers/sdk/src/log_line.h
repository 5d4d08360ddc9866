// log_line.h — the SDK's one way to write a log line on stderr: `prefix` + the printf-formatted message, CR/LF in
// the message flattened to spaces (a message cannot forge extra lines), truncated to 1 KiB, one write(2) so lines
// from concurrent processes never interleave. Used by Context::log and the fork-server runtime.
#pragma once

#include <cstdarg>
#include <string_view>

namespace spawnd::sdk::detail {

void vlog_line(std::string_view prefix, const char* fmt, va_list ap) noexcept;

}  // namespace spawnd::sdk::detail
