// Accept-Encoding weights (RFC 9110 §12.5.3, §12.4.2) and the --precompressed list: table-driven.
#include <catch2/catch.hpp>

#include <string_view>

#include "common/error.h"
#include "server/content_coding.h"

using spawnd::server::coding_quality;
using spawnd::server::parse_content_codings;

TEST_CASE("coding_quality reads q-values, '*', identity and case as RFC 9110 says", "[unit][precompressed]") {
  struct Case {
    std::string_view field, coding;
    int want;
  };
  const Case cases[] = {
      {"gzip", "gzip", 1000},
      {"gzip", "br", 0},
      {"gzip;q=0.5", "gzip", 500},
      {"gzip; q=0.25 ", "gzip", 250},
      {"gzip;q=0", "gzip", 0},
      {"gzip;q=0.000", "gzip", 0},
      {"gzip;q=1.000", "gzip", 1000},
      {"GZip;Q=0.7", "gzip", 700},
      {"x-gzip", "gzip", 1000},
      {"br;q=0, *", "br", 0},
      {"br;q=0, *", "gzip", 1000},
      {"*;q=0.3", "zstd", 300},
      {"*;q=0", "identity", 0},
      {"*;q=0, identity", "identity", 1000},
      {"gzip", "identity", 1000},   // identity acceptable unless excluded
      {"identity;q=0", "identity", 0},
      {"", "identity", 1000},
      {"gzip;q=1.5", "gzip", 0},    // malformed q: the member is ignored
      {"gzip;q=abc, *;q=0.2", "gzip", 200},
      {"gzip;q=0.1, gzip;q=0.9", "gzip", 900},
      {" , ,gzip", "gzip", 1000},
      {"deflate, gzip;q=1.0, *;q=0.5", "br", 500},
  };
  for (const Case& c : cases) {
    INFO("Accept-Encoding: " << c.field << " / " << c.coding);
    CHECK(coding_quality(c.field, c.coding) == c.want);
  }
}

TEST_CASE("parse_content_codings keeps the order, drops duplicates and refuses unknown codings",
          "[unit][precompressed]") {
  const auto codings = parse_content_codings({"gzip", "br", "gzip"});
  REQUIRE(codings.size() == 2);
  CHECK(codings[0].name == "gzip");
  CHECK(codings[0].suffix == ".gz");
  CHECK(codings[1].suffix == ".br");
  CHECK(parse_content_codings({"zstd"})[0].suffix == ".zst");
  CHECK_THROWS_AS(parse_content_codings({"deflate"}), spawnd::ConfigError);
}
