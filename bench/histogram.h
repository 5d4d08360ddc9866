// bench/histogram.h — a log-linear latency histogram (HdrHistogram's idea), for the open-loop load generator.
//
// Values are microseconds, recorded as integers from 0 to kMaxTrackable (about 19 hours; larger values are clamped
// to it and counted in clamped()). Below 256 µs every value has a bucket of its own; above, each power of two is cut
// into 128 equal buckets, so a bucket is at most 1/128 (0.78 %) of its lowest value wide. value_at_percentile()
// returns the highest value of the bucket holding the percentile (never below the true value, at most 0.78 % above),
// capped at the largest value recorded. Fixed memory (3,840 counters, 30 KiB), O(1) record(), no allocation after
// construction; not thread-safe (one histogram per thread, merged with add()).
#pragma once

#include <cstdint>
#include <vector>

namespace spawnd::bench {

class LatencyHistogram {
 public:
  static constexpr std::int64_t kMaxTrackable = (std::int64_t{1} << 36) - 1;  // µs, about 19 hours

  LatencyHistogram();

  // Records one value in µs; negative values count as 0.
  void record(std::int64_t value_us);
  // Adds every count of `other` into this one.
  void add(const LatencyHistogram& other);
  void reset();

  [[nodiscard]] std::int64_t count() const noexcept { return count_; }
  [[nodiscard]] std::int64_t min() const noexcept { return count_ ? min_ : 0; }   // exact, µs
  [[nodiscard]] std::int64_t max() const noexcept { return max_; }                // exact, µs (clamped)
  [[nodiscard]] double mean() const noexcept;                                     // µs, exact up to clamping
  [[nodiscard]] std::int64_t clamped() const noexcept { return clamped_; }
  // The value at `percentile` (0 to 100) in µs: the smallest recorded value v such that at least `percentile` % of
  // the values are ≤ v, to within the bucket width (see above). 0 when nothing is recorded.
  [[nodiscard]] std::int64_t value_at_percentile(double percentile) const;

  // Bucket arithmetic, public for tests: the bucket of a value, and the lowest and highest value of a bucket.
  [[nodiscard]] static std::size_t bucket_of(std::int64_t value_us) noexcept;
  [[nodiscard]] static std::int64_t lowest_in(std::size_t bucket) noexcept;
  [[nodiscard]] static std::int64_t highest_in(std::size_t bucket) noexcept;

 private:
  std::vector<std::int64_t> counts_;
  std::int64_t count_ = 0, min_ = 0, max_ = 0, clamped_ = 0;
  double sum_ = 0;
};

}  // namespace spawnd::bench
