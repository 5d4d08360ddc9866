// server/config.h — every setting of a spawnd process, with its default. Filled from the command line by main.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spawnd::server {

struct Config {
  // Listening.
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port (printed at start-up)
  int backlog = 1024;

  // Static files.
  std::string root = "www";  // document root

  // Limits (each a command-line flag).
  std::size_t max_header_bytes = 16 * 1024;         // request line + header fields → 414 / 431 beyond
  std::uint64_t max_body_bytes = 64 * 1024 * 1024;  // request message body → 413 beyond
  std::int64_t header_timeout_ms = 10'000;          // from the first byte of a request to the end of its head
  std::int64_t keepalive_timeout_ms = 5'000;        // idle time allowed between two requests on one connection
  std::int64_t io_timeout_ms = 60'000;              // idle time allowed while receiving a body or sending a response
  std::size_t max_connections = 1024;               // beyond: 503 and close
  std::int64_t shutdown_grace_ms = 10'000;          // SIGTERM/SIGINT: how long in-flight responses may take

  // Logging.
  std::string access_log = "-";  // "-" for stdout, or a file path (appended to)
  bool is_quiet = false;         // no access log, errors only
};

}  // namespace spawnd::server
