#include "server/status_page.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/net_addr.h"
#include "common/result.h"

namespace spawnd::server {

namespace {

constexpr std::array<std::string_view, 5> kClasses{"1xx", "2xx", "3xx", "4xx", "5xx"};

// The bytes of the numeric IPv4 or IPv6 address `text` (net::parse_numeric_host; an IPv4-mapped one as the IPv4
// address it maps, net::unmap_v4) into `bytes`, IPv4 in the first 4; returns its family, or 0 if it is no address.
int parse_address(std::string_view text, std::array<std::uint8_t, 16>& bytes) noexcept {
  Result<net::SockAddr> parsed = net::parse_numeric_host(text);
  if (!parsed) return 0;
  const net::SockAddr a = net::unmap_v4(*parsed);
  bytes = {};
  if (a.family() == AF_INET) {
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in&>(a.storage).sin_addr, 4);
  } else {
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in6&>(a.storage).sin6_addr, 16);
  }
  return a.family();
}

std::string seconds(std::int64_t ns) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(ns) / 1e9);
  return buf;
}

// Appends the exposition format's lines.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // ours: no backslash or line feed to escape
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // name{k1="v1",...} value
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label_value(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }

 private:
  std::string& out_;
};

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

AllowList::AllowList(const std::vector<std::string>& cidrs) {
  if (cidrs.empty()) {
    Network v4;
    v4.family = AF_INET;
    v4.bytes[0] = 127;
    v4.bits = 8;
    Network v6;
    v6.family = AF_INET6;
    v6.bytes[15] = 1;
    v6.bits = 128;
    networks_ = {v4, v6};
    return;
  }
  for (const std::string& cidr : cidrs) {
    const std::string_view text = cidr;
    const std::size_t slash = text.find('/');
    Network n;
    n.family = parse_address(text.substr(0, slash), n.bytes);
    if (n.family == 0) throw ConfigError("--status-allow " + cidr + ": expected ADDRESS[/BITS], an IPv4 or IPv6 network");
    const int max_bits = n.family == AF_INET ? 32 : 128;
    n.bits = max_bits;
    if (slash != std::string_view::npos) {
      const std::string_view digits = text.substr(slash + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n.bits);
      if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || n.bits < 0 ||
          n.bits > max_bits)
        throw ConfigError("--status-allow " + cidr + ": the prefix length must be 0 to " + std::to_string(max_bits));
    }
    networks_.push_back(n);
  }
}

bool AllowList::allows(std::string_view address) const noexcept {
  std::array<std::uint8_t, 16> bytes{};
  const int family = parse_address(address, bytes);
  if (family == 0) return false;
  for (const Network& n : networks_) {
    if (n.family != family) continue;
    const auto whole = static_cast<std::size_t>(n.bits / 8);
    if (!std::equal(n.bytes.begin(), n.bytes.begin() + static_cast<std::ptrdiff_t>(whole), bytes.begin())) continue;
    const int rest = n.bits % 8;
    if (rest != 0) {
      const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
      if ((n.bytes[whole] & mask) != (bytes[whole] & mask)) continue;
    }
    return true;
  }
  return false;
}

std::string render_status(const Metrics& metrics, const StatusFigures& figures) {
  std::string out;
  out.reserve(8192);
  Writer w(out);
  constexpr ServedBy kModes[] = {ServedBy::None,    ServedBy::Static,      ServedBy::Status, ServedBy::Cgi,
                                 ServedBy::Fork,    ServedBy::FastCgi,     ServedBy::FastCgiPass,
                                 ServedBy::InProc};

  w.family("spawnd_requests_total", "counter",
           "Responses sent, by site, what answered the request (mode) and status class (code).");
  for (const auto& site : metrics.sites) {
    for (ServedBy mode : kModes) {
      const SiteMetrics::ModeCounters& c = site->mode(mode);
      if (c.count == 0) continue;
      for (std::size_t i = 1; i < kClasses.size(); ++i)  // final responses only: no 1xx
        w.sample("spawnd_requests_total", {{"site", site->name()}, {"mode", served_by_name(mode)}, {"code", kClasses[i]}},
                 c.by_class[i]);
    }
  }

  w.family("spawnd_request_duration_seconds", "histogram",
           "Time from the end of the request head to the last byte of the response handed to the socket.");
  for (const auto& site : metrics.sites) {
    for (ServedBy mode : kModes) {
      const SiteMetrics::ModeCounters& c = site->mode(mode);
      if (c.count == 0) continue;
      const std::string_view mode_name = served_by_name(mode);
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < kDurationBucketsNs.size(); ++i) {
        cumulative += c.by_bucket[i];
        w.sample("spawnd_request_duration_seconds_bucket",
                 {{"site", site->name()}, {"mode", mode_name}, {"le", seconds(kDurationBucketsNs[i])}}, cumulative);
      }
      w.sample("spawnd_request_duration_seconds_bucket", {{"site", site->name()}, {"mode", mode_name}, {"le", "+Inf"}},
               c.count);
      w.sample("spawnd_request_duration_seconds_sum", {{"site", site->name()}, {"mode", mode_name}},
               seconds(c.duration_ns));
      w.sample("spawnd_request_duration_seconds_count", {{"site", site->name()}, {"mode", mode_name}}, c.count);
    }
  }

  w.family("spawnd_connections_open", "gauge", "Client connections open now.");
  w.sample("spawnd_connections_open", {}, figures.connections_open);
  w.family("spawnd_connections_total", "counter",
           "Client connections accepted and served (those over --max-connections count in spawnd_rejected_total).");
  w.sample("spawnd_connections_total", {}, figures.connections_total);
  w.family("spawnd_response_temp_bytes", "gauge",
           "Bytes of handler responses in temporary files now, waiting for slow clients (--max-response-temp-bytes).");
  w.sample("spawnd_response_temp_bytes", {}, figures.response_temp_bytes);

  // The gateways' gauges and counters, per site and mounted mode.
  struct LoadMetric {
    std::string_view name, type, help;
    std::uint64_t (*value)(const GatewayLoad&);
  };
  static constexpr LoadMetric kLoadMetrics[] = {
      {"spawnd_handlers_running", "gauge",
       "Requests being handled now: CGI and fork-server children alive, FastCGI connections in use, in-process "
       "workers busy.",
       [](const GatewayLoad& l) -> std::uint64_t { return l.running; }},
      {"spawnd_requests_queued", "gauge",
       "Requests waiting for a free handler slot (--queue), or sent to a busy FastCGI worker behind its running one.",
       [](const GatewayLoad& l) -> std::uint64_t { return l.queued; }},
      {"spawnd_spawn_failures_total", "counter",
       "Handler processes that could not be started: CGI and fork children for a request (answered 500, or 503 when "
       "out of processes or memory), fork servers and FastCGI workers (retried after a back-off).",
       [](const GatewayLoad& l) -> std::uint64_t { return l.spawn_failures; }},
  };
  for (const LoadMetric& m : kLoadMetrics) {
    w.family(m.name, m.type, m.help);
    for (const StatusFigures::Site& site : figures.sites)
      for (ServedBy mode : kModes)
        if (const auto& load = site.load[static_cast<std::size_t>(mode)])
          w.sample(m.name, {{"site", site.name}, {"mode", served_by_name(mode)}}, m.value(*load));
  }

  // 503s by reason, per site where the site is known: connections over --max-connections are refused before any
  // request (no site label); body_buffers per site (SiteMetrics, which outlive reloads); queue and queue_timeout per
  // site with handlers mounted, from its gateways.
  w.family("spawnd_rejected_total", "counter",
           "Requests and connections answered 503 because spawnd was over a limit: connections (--max-connections; "
           "before any request, so without a site), queue (the handler queue was full, --queue), queue_timeout "
           "(waited in the queue past --handler-timeout), body_buffers (request bodies over "
           "--max-buffered-body-bytes).");
  w.sample("spawnd_rejected_total", {{"reason", "connections"}}, metrics.rejected_connections);
  for (const StatusFigures::Site& site : figures.sites) {
    std::uint64_t queue_full = 0;
    std::uint64_t queue_timeout = 0;
    bool has_gateway = false;
    for (const auto& load : site.load) {
      if (!load) continue;
      has_gateway = true;
      queue_full += load->queue_full;
      queue_timeout += load->queue_timeout;
    }
    if (!has_gateway) continue;
    w.sample("spawnd_rejected_total", {{"site", site.name}, {"reason", "queue"}}, queue_full);
    w.sample("spawnd_rejected_total", {{"site", site.name}, {"reason", "queue_timeout"}}, queue_timeout);
  }
  for (const auto& site : metrics.sites)
    w.sample("spawnd_rejected_total", {{"site", site->name()}, {"reason", "body_buffers"}},
             site->rejected_body_buffers());

  // The database keeper (db_keeper.h), per site with --db.
  struct DbMetric {
    std::string_view name, type, help;
    std::int64_t (*value)(const DbKeeper::Stats&, std::int64_t wal_max_bytes);
  };
  static constexpr DbMetric kDbMetrics[] = {
      {"spawnd_db_wal_bytes", "gauge", "Size of the database's -wal file at the keeper's last round (0: none).",
       [](const DbKeeper::Stats& s, std::int64_t) { return s.wal_bytes < 0 ? 0 : s.wal_bytes; }},
      {"spawnd_db_wal_bytes_max", "gauge", "Largest -wal file size the keeper has seen.",
       [](const DbKeeper::Stats& s, std::int64_t) { return s.wal_bytes_max; }},
      {"spawnd_db_wal_limit_bytes", "gauge", "The -wal file's bound (--wal-max-bytes).",
       [](const DbKeeper::Stats&, std::int64_t max) { return max; }},
      {"spawnd_db_checkpoint_rounds_total", "counter", "Checkpoint polls the keeper ran.",
       [](const DbKeeper::Stats& s, std::int64_t) { return static_cast<std::int64_t>(s.rounds); }},
      {"spawnd_db_checkpoints_total", "counter",
       "Checkpoints that copied frames into the database or restarted or truncated the WAL.",
       [](const DbKeeper::Stats& s, std::int64_t) { return static_cast<std::int64_t>(s.checkpoints); }},
      {"spawnd_db_frames_backfilled_total", "counter", "WAL frames the keeper's checkpoints copied into the database.",
       [](const DbKeeper::Stats& s, std::int64_t) { return static_cast<std::int64_t>(s.frames_backfilled); }},
      {"spawnd_db_checkpoint_busy_rounds_total", "counter", "Checkpoint rounds that met a lock.",
       [](const DbKeeper::Stats& s, std::int64_t) { return static_cast<std::int64_t>(s.busy_rounds); }},
      {"spawnd_db_checkpoint_errors_total", "counter", "Checkpoint rounds that failed with another SQLite error.",
       [](const DbKeeper::Stats& s, std::int64_t) { return static_cast<std::int64_t>(s.errors); }},
  };
  for (const DbMetric& m : kDbMetrics) {
    w.family(m.name, m.type, m.help);
    for (const StatusFigures::Site& site : figures.sites)
      if (site.db) w.sample(m.name, {{"site", site.name}}, std::to_string(m.value(*site.db, site.wal_max_bytes)));
  }
  w.family("spawnd_db_checkpoint_escalations_total", "counter",
           "RESTART and TRUNCATE checkpoints the keeper finished to keep the WAL under its bound, by kind.");
  for (const StatusFigures::Site& site : figures.sites) {
    if (!site.db) continue;
    w.sample("spawnd_db_checkpoint_escalations_total", {{"site", site.name}, {"kind", "restart"}}, site.db->restarts);
    w.sample("spawnd_db_checkpoint_escalations_total", {{"site", site.name}, {"kind", "truncate"}},
             site.db->truncations);
  }
  return out;
}

}  // namespace spawnd::server
