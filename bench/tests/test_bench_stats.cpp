// bench/tests/test_bench_stats.cpp — median, min–max and ratios (bench/stats.h).
#include <catch2/catch.hpp>

#include "bench/stats.h"

using namespace spawnd::bench;

TEST_CASE("spread of an odd count: the middle value, whatever the order", "[unit][bench]") {
  Spread s = spread({1500, 1200, 1300});
  CHECK(s.median == 1300);
  CHECK(s.min == 1200);
  CHECK(s.max == 1500);
  CHECK(s.count == 3);
}

TEST_CASE("spread of an even count: the mean of the two middle values", "[unit][bench]") {
  Spread s = spread({4, 1, 3, 2});
  CHECK(s.median == 2.5);
  CHECK(s.min == 1);
  CHECK(s.max == 4);
}

TEST_CASE("one outlier does not move the median", "[unit][bench]") {
  CHECK(median({100, 101, 5}) == 100);
  CHECK(median({100, 101, 100000}) == 101);
}

TEST_CASE("spread of one sample and of none", "[unit][bench]") {
  Spread one = spread({42});
  CHECK(one.median == 42);
  CHECK(one.min == 42);
  CHECK(one.max == 42);
  Spread none = spread({});
  CHECK(none.count == 0);
  CHECK(none.median == 0);
  CHECK(median({}) == 0);
}

TEST_CASE("ratio divides, and has no value against nothing measured", "[unit][bench]") {
  CHECK(ratio(900, 1000).value() == Approx(0.9));
  CHECK(ratio(2000, 1000).value() == Approx(2.0));
  CHECK_FALSE(ratio(900, 0).has_value());
  CHECK_FALSE(ratio(900, -1).has_value());
}
