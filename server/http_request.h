// server/http_request.h — one parsed HTTP/1.x request head (RFC 9112 §3), as the router and gateways see it.
//
// The message body is not part of Request: it streams through RequestBody (gateway.h) while the exchange runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ascii.h"

namespace spawnd::server {

using ::spawnd::iequals;  // common/ascii.h

struct Request {
  std::string method;          // "GET", as sent (methods are case-sensitive, RFC 9110 §9.1)
  std::string target;          // the request-target in origin-form, e.g. "/cgi-bin/kv/a%20b?x=1" (an absolute-form
                               // one made so, its authority moved to the Host field), or "*"
  std::string path;            // the target's path, before '?', still percent-encoded
  std::string query;           // the target's query, after '?', without it; empty if none
  int version_major = 1;
  int version_minor = 1;
  std::vector<std::pair<std::string, std::string>> fields;  // header fields in order, names as sent

  std::optional<std::uint64_t> content_length;  // Content-Length; for a chunked body, set once fully received
  bool is_chunked = false;                      // Transfer-Encoding: chunked (RFC 9112 §7.1)
  bool has_body = false;                        // a message body follows the head
  bool is_keep_alive = true;                    // the client allows another request on this connection
  bool expects_continue = false;                // Expect: 100-continue (RFC 9110 §10.1.1)

  std::string remote_addr;  // peer IP address, e.g. "127.0.0.1"
  std::uint16_t remote_port = 0;
  std::string local_addr;  // our address of this connection
  std::uint16_t local_port = 0;
  std::uint64_t id = 0;    // per-process request number, for log lines
  const char* tls_protocol = nullptr;  // over HTTPS, the TLS version ("TLSv1.3", OpenSSL's static string); else null

  // The first field named `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> field(std::string_view name) const noexcept;
  // "HTTP/1.1" or "HTTP/1.0".
  [[nodiscard]] std::string protocol() const;
  [[nodiscard]] bool is_head() const noexcept { return method == "HEAD"; }
};

}  // namespace spawnd::server
