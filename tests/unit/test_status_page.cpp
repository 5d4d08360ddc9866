// The status page's pure parts: the --status-allow networks and the exposition format's text.
#include <catch2/catch.hpp>

#include <string>

#include "common/error.h"
#include "server/status_page.h"

using namespace spawnd::server;

TEST_CASE("AllowList: loopback by default, CIDR networks otherwise, IPv4-mapped addresses as IPv4",
          "[unit][status]") {
  const AllowList loopback({});
  CHECK(loopback.allows("127.0.0.1"));
  CHECK(loopback.allows("127.255.0.9"));
  CHECK(loopback.allows("::1"));
  CHECK(loopback.allows("::ffff:127.0.0.1"));
  CHECK_FALSE(loopback.allows("10.0.0.1"));
  CHECK_FALSE(loopback.allows("::2"));
  CHECK_FALSE(loopback.allows("garbage"));

  const AllowList list({"192.168.1.0/24", "10.1.2.3", "2001:db8::/32", "172.16.0.0/12"});
  CHECK(list.allows("192.168.1.200"));
  CHECK_FALSE(list.allows("192.168.2.1"));
  CHECK(list.allows("10.1.2.3"));
  CHECK_FALSE(list.allows("10.1.2.4"));
  CHECK(list.allows("2001:db8:ffff::1"));
  CHECK_FALSE(list.allows("2001:db9::1"));
  CHECK(list.allows("172.31.255.255"));  // /12: a prefix that is not a whole number of bytes
  CHECK_FALSE(list.allows("172.32.0.0"));
  CHECK_FALSE(list.allows("127.0.0.1"));  // a list replaces the default

  CHECK(AllowList({"0.0.0.0/0"}).allows("203.0.113.7"));
  CHECK_FALSE(AllowList({"0.0.0.0/0"}).allows("::1"));
  for (const char* bad : {"1.2.3.4/33", "::/129", "1.2.3/8", "10.0.0.0/x", "10.0.0.0/", "host.example"})
    CHECK_THROWS_AS(AllowList({bad}), spawnd::ConfigError);
}

TEST_CASE("render_status: HELP and TYPE lines, escaped labels, cumulative buckets", "[unit][status]") {
  Metrics metrics;
  SiteMetrics& site = metrics.add_site("a \"quoted\" \\ site\n");
  site.record(ServedBy::Static, 200, 1'000'000);       // 1 ms
  site.record(ServedBy::Static, 404, 30'000'000);      // 30 ms
  site.record(ServedBy::Static, 200, 20'000'000'000);  // 20 s: only +Inf
  site.count_rejected_body_buffers();
  metrics.rejected_connections = 3;
  StatusFigures figures;
  figures.connections_open = 2;
  StatusFigures::Site& with_cgi = figures.sites.emplace_back();
  with_cgi.name = "b.example";
  with_cgi.load[static_cast<std::size_t>(ServedBy::Cgi)].emplace().queue_full = 2;
  figures.sites.emplace_back().name = "static.example";  // no gateway: no queue
  const std::string page = render_status(metrics, figures);
  const std::string labels = "site=\"a \\\"quoted\\\" \\\\ site\\n\",mode=\"static\"";
  CHECK(page.find("spawnd_requests_total{" + labels + ",code=\"2xx\"} 2\n") != std::string::npos);
  CHECK(page.find("spawnd_requests_total{" + labels + ",code=\"4xx\"} 1\n") != std::string::npos);
  CHECK(page.find("code=\"1xx\"") == std::string::npos);
  CHECK(page.find("spawnd_request_duration_seconds_bucket{" + labels + ",le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(page.find("spawnd_request_duration_seconds_bucket{" + labels + ",le=\"0.05\"} 2\n") != std::string::npos);
  CHECK(page.find("spawnd_request_duration_seconds_bucket{" + labels + ",le=\"10\"} 2\n") != std::string::npos);
  CHECK(page.find("spawnd_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(page.find("spawnd_request_duration_seconds_sum{" + labels + "} 20.031\n") != std::string::npos);
  CHECK(page.find("spawnd_request_duration_seconds_count{" + labels + "} 3\n") != std::string::npos);
  CHECK(page.find("# TYPE spawnd_connections_open gauge\nspawnd_connections_open 2\n") != std::string::npos);
  // No mode that answered nothing, and no database without --db.
  CHECK(page.find("mode=\"cgi\",code=") == std::string::npos);
  CHECK(page.find("spawnd_db_wal_bytes{") == std::string::npos);
  // Rejections: those over --max-connections have no site; the others are counted per site.
  CHECK(page.find("spawnd_rejected_total{reason=\"connections\"} 3\n") != std::string::npos);
  CHECK(page.find("spawnd_rejected_total{site=\"a \\\"quoted\\\" \\\\ site\\n\",reason=\"body_buffers\"} 1\n") !=
        std::string::npos);
  CHECK(page.find("spawnd_rejected_total{site=\"b.example\",reason=\"queue\"} 2\n") != std::string::npos);
  CHECK(page.find("spawnd_rejected_total{site=\"b.example\",reason=\"queue_timeout\"} 0\n") != std::string::npos);
  CHECK(page.find("site=\"static.example\",reason=\"queue") == std::string::npos);
  // Every line is a comment or a sample ending in a number.
  CHECK(page.back() == '\n');
}
