// bench/stats.h — the statistics spawnd-bench reports: median with min–max over repetitions, and same-run ratios.
//
// Pure functions over plain vectors; no I/O. A benchmark run is repeated a few times (default 3), so these work on
// tiny samples: the median is the middle value (the mean of the two middle values for an even count), which one
// disturbed repetition cannot move much, and min–max shows the whole spread rather than a standard deviation that
// three samples cannot support.
#pragma once

#include <optional>
#include <vector>

namespace spawnd::bench {

struct Spread {
  double median = 0;
  double min = 0;
  double max = 0;
  int count = 0;  // samples summarised; 0 means there were none and the other fields are 0
};

// Median, min and max of `samples` (in any order). An empty input gives a Spread with count 0.
[[nodiscard]] Spread spread(std::vector<double> samples);

// The median alone (0 for an empty input).
[[nodiscard]] double median(std::vector<double> samples);

// numerator / denominator, or nullopt when the denominator is not positive (nothing measured to compare with).
[[nodiscard]] std::optional<double> ratio(double numerator, double denominator);

}  // namespace spawnd::bench
