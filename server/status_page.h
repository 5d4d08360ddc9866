// server/status_page.h — GET /server-status: the server's counters and levels in the Prometheus text exposition
// format, version 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Who may read it: an AllowList of networks (--status-allow CIDR, repeatable), by default the loopback networks
// 127.0.0.0/8 and ::1. Other clients get 403, as nginx's `deny` and Apache's `Require ip` answer. The page is built
// when it is requested, from the Metrics (metrics.h) and from what the server reads then (StatusFigures): nothing is
// computed per request for it.
//
// Loop thread only; render_status() is pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/db_keeper.h"
#include "server/gateway/gateway.h"
#include "server/metrics.h"

namespace spawnd::server {

// The Content-Type of render_status()'s output (the exposition format's, version 0.0.4).
inline constexpr std::string_view kStatusContentType = "text/plain; version=0.0.4; charset=utf-8";

// A list of IPv4 and IPv6 networks.
class AllowList {
 public:
  // Parses `cidrs`, each "ADDRESS/BITS" or a single "ADDRESS" (IPv4 dotted or IPv6); an empty list means the loopback
  // networks 127.0.0.0/8 and ::1/128. Throws spawnd::ConfigError naming the entry if one is malformed.
  explicit AllowList(const std::vector<std::string>& cidrs);
  // Whether the numeric address `address` (as REMOTE_ADDR is written: "127.0.0.1", "::1", "::ffff:127.0.0.1") is in
  // one of the networks. An IPv4-mapped IPv6 address counts as its IPv4 address. Text that is no address: false.
  [[nodiscard]] bool allows(std::string_view address) const noexcept;

 private:
  struct Network {
    std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4
    int family = 0;                        // AF_INET or AF_INET6
    int bits = 0;
  };
  std::vector<Network> networks_;
};

// What the status page reads from the server when it is scraped, beside the Metrics.
struct StatusFigures {
  std::size_t connections_open = 0;
  std::uint64_t connections_total = 0;  // accepted since start-up
  std::uint64_t response_temp_bytes = 0;  // spooled responses' temporary files (SpoolBudget::in_use), bytes
  // One site's gauges: the load of its gateways, summed per mode (nullopt: no gateway of that mode), and its
  // database keeper's counters (nullopt: no --db).
  struct Site {
    std::string name;
    std::array<std::optional<GatewayLoad>, kServedByCount> load;
    std::optional<DbKeeper::Stats> db;
    std::int64_t wal_max_bytes = 0;
  };
  std::vector<Site> sites;
};

// The page: every metric with its HELP and TYPE lines. Request counters and the duration histogram appear for the
// modes that have answered at least one request; gauges for the modes that are mounted.
[[nodiscard]] std::string render_status(const Metrics& metrics, const StatusFigures& figures);

// `value` escaped for a label value of the exposition format: backslash, double quote and line feed.
[[nodiscard]] std::string escape_label_value(std::string_view value);

}  // namespace spawnd::server
