// bench/load_main.cpp — spawnd-load: the open-loop load generator alone, against any HTTP server (bench/load_generator.h).
//
//   spawnd-load --rate 1000 --duration 5 [--connections 16] [--connection-per-request] [--method POST
//               --body-file form.txt --header 'Content-Type: application/x-www-form-urlencoded'] [--json] URL
// Prints the offered and achieved rate, late sends, errors, statuses and the latency percentiles measured from each
// request's intended send time; with --json, one JSON object instead (OpenLoopReport::to_json()). Exits 0 when every
// request got a 2xx/3xx answer and the generator kept up, 1 otherwise, 2 on bad options or when it cannot connect.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "bench/load_generator.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
bool stop_requested() { return g_stop != 0; }

}  // namespace

int main(int argc, char** argv) {
  using namespace spawnd::bench;
  OpenLoopSpec spec;
  std::string url, method = "GET", body_file;
  std::vector<std::string> fields;
  bool json = false;
  CLI::App app{"Open-loop HTTP load at a constant rate; latency from each request's intended send time"};
  app.add_option("--rate,-R", spec.rate, "Requests per second (evenly spaced)")->required()->check(CLI::PositiveNumber);
  app.add_option("--duration,-d", spec.duration_s, "Seconds of schedule")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--connections,-c", spec.connections, "Connections (keep-alive), or at most open at once")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_flag("--connection-per-request", spec.connection_per_request, "A new connection for every request");
  app.add_option("--timeout", spec.timeout_s, "Seconds a response may take; also the longest drain")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--late-ms", spec.late_ms, "A send later than this after its due time is a late send")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--method", method, "Request method")->capture_default_str();
  app.add_option("--header,-H", fields, "Extra header field 'Name: value' (repeatable)");
  app.add_option("--body-file", body_file, "Send this file as the message body")->check(CLI::ExistingFile);
  app.add_flag("--json", json, "Print one JSON object");
  app.add_option("url", url, "http://HOST[:PORT]/PATH")->required();
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  OpenLoopReport r;
  try {
    const HttpUrl u = parse_http_url(url);
    spec.host = u.host;
    spec.port = u.port;
    spec.requests = {custom_request(u, method, fields, body_file)};
    r = run_open_loop(spec, stop_requested);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spawnd-load: %s\n", e.what());
    return 2;
  }
  if (json) {
    std::printf("%s\n", r.to_json().dump().c_str());
  } else {
    std::printf("offered %.1f req/s, achieved %.1f req/s over %.2f s (%lld due, %lld sent, %lld responses)\n",
                r.offered_rps, r.achieved_rps, r.duration_s, static_cast<long long>(r.scheduled),
                static_cast<long long>(r.sent), static_cast<long long>(r.responses));
    std::printf("latency from the intended send (ms): p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                r.latency_ms(50), r.latency_ms(90), r.latency_ms(99), r.latency_ms(99.9),
                static_cast<double>(r.latency_us.max()) / 1000.0);
    std::printf("late sends %lld (%lld by the generator itself; largest lag %.1f ms)\n",
                static_cast<long long>(r.late_sends), static_cast<long long>(r.self_late), r.max_send_lag_ms);
    std::printf("errors %lld (connect %lld, read %lld, write %lld, timeout %lld, parse %lld, unsent %lld), "
                "non-2xx/3xx %lld\n",
                static_cast<long long>(r.errors()), static_cast<long long>(r.connect_errors),
                static_cast<long long>(r.read_errors), static_cast<long long>(r.write_errors),
                static_cast<long long>(r.timeouts), static_cast<long long>(r.parse_errors),
                static_cast<long long>(r.unsent), static_cast<long long>(r.non_2xx_3xx));
    std::printf("statuses:");
    for (const auto& [code, n] : r.statuses) std::printf(" %d=%lld", code, static_cast<long long>(n));
    std::printf("\ngenerator CPU %.2f s of %.2f s\n", r.generator_cpu_s, r.elapsed_s);
    for (const auto& w : r.warnings) std::printf("WARNING: %s\n", w.c_str());
  }
  return r.errors() == 0 && r.non_2xx_3xx == 0 && r.is_trustworthy() ? 0 : 1;
}
