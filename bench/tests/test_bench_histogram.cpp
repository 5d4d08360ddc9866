// bench/tests/test_bench_histogram.cpp — the log-linear latency histogram against a sorted-array reference
// (bench/histogram.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "bench/histogram.h"

using spawnd::bench::LatencyHistogram;

namespace {

// The value of rank ceil(p/100 * n) (at least 1) in the sorted sample: the definition the histogram follows.
std::int64_t reference_percentile(const std::vector<std::int64_t>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(p / 100.0 * n)));
  return sorted[rank - 1];
}

}  // namespace

TEST_CASE("the buckets tile the range without gaps, each at most 1/128 of its lowest value wide", "[unit][bench]") {
  const std::size_t last = LatencyHistogram::bucket_of(LatencyHistogram::kMaxTrackable);
  CHECK(LatencyHistogram::highest_in(last) == LatencyHistogram::kMaxTrackable);
  for (std::size_t b = 0; b < last; ++b) {
    INFO("bucket " << b);
    REQUIRE(LatencyHistogram::lowest_in(b + 1) == LatencyHistogram::highest_in(b) + 1);
    const auto lo = LatencyHistogram::lowest_in(b), hi = LatencyHistogram::highest_in(b);
    REQUIRE(LatencyHistogram::bucket_of(lo) == b);
    REQUIRE(LatencyHistogram::bucket_of(hi) == b);
    REQUIRE(static_cast<double>(hi - lo + 1) <= std::max(1.0, static_cast<double>(lo) / 128.0));
  }
}

TEST_CASE("percentiles of random latencies, µs to minutes, are within 1 % of a sorted-array reference",
          "[unit][bench]") {
  std::mt19937_64 rng(GENERATE(1u, 2u, 3u));
  // Log-uniform from 1 µs to 10 minutes, and a second, narrow mode around 2 ms: spans decades, as latencies do.
  std::uniform_real_distribution<double> log_us(0, std::log(600e6));
  std::normal_distribution<double> mode(2000, 150);
  std::vector<std::int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200'000; ++i) {
    const double v = i % 3 == 0 ? mode(rng) : std::exp(log_us(rng));
    const auto us = std::max<std::int64_t>(0, std::llround(v));
    values.push_back(us);
    h.record(us);
  }
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == static_cast<std::int64_t>(values.size()));
  CHECK(h.min() == values.front());
  CHECK(h.max() == values.back());
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const auto want = reference_percentile(values, p);
    const auto got = h.value_at_percentile(p);
    INFO("p" << p << ": histogram " << got << " µs, reference " << want << " µs");
    CHECK(got >= want);
    CHECK(static_cast<double>(got) <= static_cast<double>(want) * 1.01 + 1);
  }
}

TEST_CASE("merged histograms answer as one, and the empty one answers 0", "[unit][bench]") {
  LatencyHistogram a, b, both;
  for (std::int64_t v = 1; v <= 1000; ++v) {
    (v % 2 ? a : b).record(v * 37);
    both.record(v * 37);
  }
  a.add(b);
  CHECK(a.count() == 1000);
  CHECK(a.value_at_percentile(99) == both.value_at_percentile(99));
  CHECK(a.mean() == Approx(both.mean()));
  LatencyHistogram empty;
  CHECK(empty.value_at_percentile(99) == 0);
  CHECK(empty.max() == 0);
  empty.record(LatencyHistogram::kMaxTrackable + 5);
  CHECK(empty.clamped() == 1);
  CHECK(empty.max() == LatencyHistogram::kMaxTrackable);
}
