#include "server/gateway/supervisor.h"

#include <sys/stat.h>

#include <algorithm>

namespace spawnd::server {

std::int64_t RestartBackoff::next_delay_ms() noexcept {
  ++failures_;
  if (failures_ == 1) return 0;
  return std::min(kMaxDelayMs, kFirstDelayMs << std::min(failures_ - 2, 10));
}

std::optional<HandlerVersion> HandlerVersion::of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return HandlerVersion{st.st_dev, st.st_ino, st.st_size,
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace spawnd::server
