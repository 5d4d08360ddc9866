// bench/stats.cpp — median, min–max and ratios (bench/stats.h).
#include "bench/stats.h"

#include <algorithm>
#include <utility>

namespace spawnd::bench {

Spread spread(std::vector<double> samples) {
  Spread s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  s.count = static_cast<int>(n);
  s.min = samples.front();
  s.max = samples.back();
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2.0;
  return s;
}

double median(std::vector<double> samples) { return spread(std::move(samples)).median; }

std::optional<double> ratio(double numerator, double denominator) {
  if (!(denominator > 0)) return std::nullopt;
  return numerator / denominator;
}

}  // namespace spawnd::bench
