// server/sock_addr.h — printing socket addresses (for REMOTE_ADDR, SERVER_PORT, logs and the listening line).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace spawnd::server {

// The numeric IP address of `ss` ("127.0.0.1", "::1"; "?" for other families), and its port in `port`.
[[nodiscard]] std::string format_address(const sockaddr_storage& ss, std::uint16_t& port);

}  // namespace spawnd::server
