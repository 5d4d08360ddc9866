// bench/histogram.cpp — the log-linear latency histogram (bench/histogram.h).
#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace spawnd::bench {

namespace {

// Buckets 0..255 hold the values 0..255 exactly. From 256 on, a value v with bit width b (9 or more) has
// shift = b - 8 and top = v >> shift in [128, 256): bucket 256 + (shift - 1) * 128 + (top - 128).
constexpr int kLinearBits = 8;                          // 256 exact buckets
constexpr std::int64_t kLinear = std::int64_t{1} << kLinearBits;
constexpr std::int64_t kHalf = kLinear / 2;             // 128 buckets per power of two above
constexpr int kMaxBits = 36;                            // kMaxTrackable has 36 bits
constexpr std::size_t kBuckets = static_cast<std::size_t>(kLinear + (kMaxBits - kLinearBits) * kHalf);

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::bucket_of(std::int64_t v) noexcept {
  v = std::clamp<std::int64_t>(v, 0, kMaxTrackable);
  if (v < kLinear) return static_cast<std::size_t>(v);
  const int bits = std::bit_width(static_cast<std::uint64_t>(v));
  const int shift = bits - kLinearBits;
  const std::int64_t top = v >> shift;
  return static_cast<std::size_t>(kLinear + (shift - 1) * kHalf + (top - kHalf));
}

std::int64_t LatencyHistogram::lowest_in(std::size_t bucket) noexcept {
  const auto b = static_cast<std::int64_t>(bucket);
  if (b < kLinear) return b;
  const std::int64_t shift = (b - kLinear) / kHalf + 1;
  const std::int64_t top = (b - kLinear) % kHalf + kHalf;
  return top << shift;
}

std::int64_t LatencyHistogram::highest_in(std::size_t bucket) noexcept {
  const auto b = static_cast<std::int64_t>(bucket);
  if (b < kLinear) return b;
  const std::int64_t shift = (b - kLinear) / kHalf + 1;
  return lowest_in(bucket) + (std::int64_t{1} << shift) - 1;
}

void LatencyHistogram::record(std::int64_t value_us) {
  if (value_us < 0) value_us = 0;
  if (value_us > kMaxTrackable) {
    value_us = kMaxTrackable;
    ++clamped_;
  }
  ++counts_[bucket_of(value_us)];
  min_ = count_ == 0 ? value_us : std::min(min_, value_us);
  max_ = std::max(max_, value_us);
  ++count_;
  sum_ += static_cast<double>(value_us);
}

void LatencyHistogram::add(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  clamped_ += other.clamped_;
  sum_ += other.sum_;
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = min_ = max_ = clamped_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0; }

std::int64_t LatencyHistogram::value_at_percentile(double percentile) const {
  if (count_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  // The rank of the value asked for, 1-based: at least 1, so that p0 is the minimum.
  const auto rank = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(percentile / 100.0 * static_cast<double>(count_))));
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(highest_in(i), min_, max_);
  }
  assert(false && "counts_ sum to count_");
  return max_;
}

}  // namespace spawnd::bench
