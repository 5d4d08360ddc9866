#include "server/sock_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace spawnd::server {

std::string format_address(const sockaddr_storage& ss, std::uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
    port = ntohs(sin.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
    port = ntohs(sin6.sin6_port);
  }
  return buf;
}

}  // namespace spawnd::server
