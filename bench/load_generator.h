// bench/load_generator.h — the open-loop load generator: requests at a constant rate, latency from the intended send.
//
// A closed-loop generator (wrk) sends a connection's next request only when the previous answer has come, so when
// the server stalls it simply sends less, and the stall shows only in the few requests that were in flight:
// coordinated omission. This one fixes the schedule first: request i is due at t0 + i / rate (evenly spaced, one
// shared schedule for all connections). A due request goes out on an idle connection at once; if every connection
// is busy it waits in a backlog and goes out on the next connection that becomes idle. Either way its latency is
// measured from its INTENDED send time to the end of its response, so a stall of the server is charged to every
// request that should have been sent during it (HdrHistogram's "corrected" latency; wrk2 and vegeta do the same).
//
// One thread, one epoll loop, non-blocking sockets, at most one request in flight per connection (no pipelining).
// Keep-alive by default: `connections` connections are opened before t0 and reused (reopened when the server closes
// one); with `connection_per_request` every request opens a connection of its own, sends `Connection: close` and
// closes it after the response, and `connections` bounds how many are open at once. Responses are parsed with
// llhttp (Content-Length, chunked, or close-delimited bodies). Blocks the calling thread for about duration_s (plus
// at most timeout_s to drain).
//
// The generator checks itself: it reports, in `warnings`, when its own thread used ≥ 90 % of a core or when it
// released more than 0.1 % of the requests later than `late_ms` after their due time, since then its figures
// describe the generator and not the server.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/histogram.h"

namespace spawnd::bench {

// http://HOST[:PORT][/PATH]: what --target names. https is not supported.
struct HttpUrl {
  std::string host;            // a name or an IPv4/IPv6 literal (brackets removed)
  std::uint16_t port = 80;
  std::string target = "/";    // the request target: path and query
};
// Parses `url`. Throws std::invalid_argument saying what is wrong (another scheme, a bad port, no host).
[[nodiscard]] HttpUrl parse_http_url(std::string_view url);

// One request shape. The generator adds Host, Content-Length (when there is a body) and, with
// connection_per_request, Connection: close.
struct LoadRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::string> fields;  // extra header fields, "Name: value"
  std::string body;
};

struct OpenLoopSpec {
  std::string host = "127.0.0.1";   // resolved once, before the run (getaddrinfo)
  std::uint16_t port = 0;
  std::vector<LoadRequest> requests;  // request i is requests[i % size()]; must not be empty
  double rate = 0;                  // requests per second, > 0
  int connections = 16;             // > 0
  double duration_s = 5;            // the schedule's length: rate * duration_s requests are due
  bool connection_per_request = false;
  double timeout_s = 5;             // a response not complete this long after its send is a timeout; the run
                                    // also ends at most this long after the schedule does (the drain)
  double late_ms = 10;              // a request sent more than this after its due time is a late send
};

struct OpenLoopReport {
  double offered_rps = 0;           // the schedule's rate
  double achieved_rps = 0;          // responses / max(duration_s, time from t0 to the last response)
  double duration_s = 0;            // the schedule's length
  double elapsed_s = 0;             // t0 to the end of the drain
  std::int64_t scheduled = 0;       // requests due
  std::int64_t sent = 0;            // requests written (wholly or in part)
  std::vector<std::int64_t> sent_by_request;  // sent, per entry of OpenLoopSpec::requests
  std::int64_t responses = 0;       // complete responses, any status
  std::int64_t late_sends = 0;      // sent more than late_ms after their due time (busy connections, or see below)
  std::int64_t self_late = 0;       // ... of which released late by the generator itself (its own lag)
  double max_send_lag_ms = 0;       // the largest send time minus due time
  std::int64_t connect_errors = 0, read_errors = 0, write_errors = 0, timeouts = 0, parse_errors = 0;
  std::int64_t unsent = 0;          // still in the backlog when the drain ended (counted as errors)
  std::int64_t non_2xx_3xx = 0;     // responses with a status below 200 or of 400 and above
  std::map<int, std::int64_t> statuses;  // status code -> responses
  LatencyHistogram latency_us;      // due time to the end of the response, µs; complete responses only
  LatencyHistogram release_lag_us;  // the generator's own lag: due time to when it took the request up, µs
  double generator_cpu_s = 0;       // CPU time of the generator's thread during the run
  std::vector<std::string> warnings;  // why the figures may describe the generator rather than the server

  // Every request that did not get a complete response: socket errors, timeouts, parse errors, unsent.
  [[nodiscard]] std::int64_t errors() const {
    return connect_errors + read_errors + write_errors + timeouts + parse_errors + unsent;
  }
  // (errors + non-2xx/3xx) over the requests due; 0 when none were due.
  [[nodiscard]] double error_ratio() const;
  // The latency percentile `p` (0–100) in ms.
  [[nodiscard]] double latency_ms(double p) const;
  [[nodiscard]] bool is_trustworthy() const { return warnings.empty(); }
  // The generator's thread used at least 90 % of a core: it, not the server, may have set the pace.
  [[nodiscard]] bool is_generator_saturated() const { return elapsed_s > 0 && generator_cpu_s / elapsed_s >= 0.9; }
  // {"offered_rps", "achieved_rps", "latency_ms": {"p50", "p90", "p99", "p99_9", "max", "mean"}, "errors": {...},
  //  "late_sends", "statuses", "warnings", ...}
  [[nodiscard]] nlohmann::json to_json() const;
};

// Runs the schedule of `spec` (see the header comment) and returns what it measured. Throws std::invalid_argument for
// a bad spec and std::runtime_error when the host cannot be resolved or no connection can be opened before t0
// (nothing is listening). Failures after t0 are counted, never thrown. `stop_early`, if given, is polled about every
// 50 ms; when it returns true the run ends, reporting what was measured so far.
[[nodiscard]] OpenLoopReport run_open_loop(const OpenLoopSpec& spec, bool (*stop_early)() = nullptr);

// The request --target, --method, --header and --body-file describe (spawnd-bench and spawnd-load share it).
// Throws std::runtime_error if `body_file` (empty: no body) cannot be read.
[[nodiscard]] LoadRequest custom_request(const HttpUrl& url, const std::string& method,
                                         const std::vector<std::string>& fields, const std::string& body_file);

// The whole request message for `r` as sent to host:port (see LoadRequest).
[[nodiscard]] std::string render_request(const LoadRequest& r, std::string_view host, std::uint16_t port,
                                         bool connection_close);

}  // namespace spawnd::bench
