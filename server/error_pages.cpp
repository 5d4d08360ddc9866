#include "server/error_pages.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "common/error.h"
#include "common/fd.h"
#include "common/sys.h"

namespace spawnd::server {

ErrorPages ErrorPages::load(const std::string& directory) {
  namespace fs = std::filesystem;
  ErrorPages pages;
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) throw ConfigError("--error-pages " + directory + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != 8 || !name.ends_with(".html")) continue;
    int status = 0;
    for (char c : name.substr(0, 3)) status = c >= '0' && c <= '9' ? status * 10 + (c - '0') : -1000;
    if (status < 400 || status > 599) continue;
    const std::string path = it->path().string();
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st{};
    if (!fd || ::fstat(fd.get(), &st) != 0)
      throw ConfigError("--error-pages " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) continue;
    if (static_cast<std::uint64_t>(st.st_size) > kMaxPageBytes)
      throw ConfigError("--error-pages " + path + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                        std::to_string(kMaxPageBytes) + " an error page may have");
    std::string body(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < body.size()) {
      const ssize_t n = sys::read(fd.get(), body.data() + got, body.size() - got);
      if (n < 0) throw ConfigError("--error-pages " + path + ": " + std::strerror(errno));
      if (n == 0) break;  // shrank meanwhile: what is there
      got += static_cast<std::size_t>(n);
    }
    body.resize(got);
    pages.pages_.emplace(status, std::move(body));
  }
  if (ec) throw ConfigError("--error-pages " + directory + ": " + ec.message());
  return pages;
}

}  // namespace spawnd::server
