// bench/wrk_scripts.h — the wrk Lua scripts of bench/wrk/, embedded at build time (bench/embed_wrk.cmake).
#pragma once

#include <string_view>

namespace spawnd::bench {

// The text of bench/wrk/<name>.lua ("report", "guestbook_post", "guestbook_mixed"), or empty if there is none.
[[nodiscard]] std::string_view wrk_script(std::string_view name) noexcept;

}  // namespace spawnd::bench
