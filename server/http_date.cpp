// server/http_date.cpp — HTTP-date (RFC 9110 §5.6.7), formatted and parsed by hand so that neither depends on the
// locale (strftime/strptime use LC_TIME names) or on the TZ environment variable (timegm/gmtime_r are UTC only).
#include "server/http_date.h"

#include <array>
#include <cstdio>

namespace spawnd::server {
namespace {

constexpr std::array<std::string_view, 7> kDayNames{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDayNames{"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonthNames{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The largest time an IMF-fixdate can hold in its four-digit year: 9999-12-31 23:59:59 UTC.
constexpr std::time_t kMaxFormattable = 253402300799;

// A cursor over the field value; every parse step either consumes exactly what it expects or fails.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  [[nodiscard]] bool at_end() const { return s_.empty(); }

  bool literal(std::string_view lit) {
    if (s_.substr(0, lit.size()) != lit) return false;
    s_.remove_prefix(lit.size());
    return true;
  }

  // Exactly `n` ASCII digits.
  bool digits(std::size_t n, int& value) {
    if (s_.size() < n) return false;
    value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (s_[i] < '0' || s_[i] > '9') return false;
      value = value * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    return true;
  }

  // One of `names` (case-sensitive: HTTP-date is, RFC 9110 §5.6.7); sets `index`.
  template <std::size_t N>
  bool one_of(const std::array<std::string_view, N>& names, int& index) {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }

  // time-of-day = hour ":" minute ":" second
  bool time_of_day(std::tm& tm) {
    return digits(2, tm.tm_hour) && literal(":") && digits(2, tm.tm_min) && literal(":") && digits(2, tm.tm_sec);
  }

 private:
  std::string_view s_;
};

bool is_leap_year(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int days_in_month(int year, int month0) {
  constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month0 == 1 && is_leap_year(year) ? 29 : kDays[static_cast<std::size_t>(month0)];
}

// Checks the ranges (a second of 60 is a leap second, RFC 9110 §5.6.7) and converts. `year` is the full year;
// tm_mon and tm_mday are already set.
std::optional<std::time_t> to_time(std::tm& tm, int year) {
  if (tm.tm_mday < 1 || tm.tm_mday > days_in_month(year, tm.tm_mon)) return std::nullopt;
  if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_isdst = 0;
  return ::timegm(&tm);
}

// IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT; date1 = day SP month SP year (e.g. 06 Nov 1994)
std::optional<std::time_t> parse_imf_fixdate(std::string_view s) {
  Scanner in(s);
  std::tm tm{};
  int weekday = 0;
  int year = 0;
  if (!(in.one_of(kDayNames, weekday) && in.literal(", ") && in.digits(2, tm.tm_mday) && in.literal(" ") &&
        in.one_of(kMonthNames, tm.tm_mon) && in.literal(" ") && in.digits(4, year) && in.literal(" ") &&
        in.time_of_day(tm) && in.literal(" GMT") && in.at_end())) {
    return std::nullopt;
  }
  return to_time(tm, year);
}

// rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT; date2 = day "-" month "-" 2DIGIT
std::optional<std::time_t> parse_rfc850_date(std::string_view s) {
  Scanner in(s);
  std::tm tm{};
  int weekday = 0;
  int two_digit_year = 0;
  if (!(in.one_of(kLongDayNames, weekday) && in.literal(", ") && in.digits(2, tm.tm_mday) && in.literal("-") &&
        in.one_of(kMonthNames, tm.tm_mon) && in.literal("-") && in.digits(2, two_digit_year) && in.literal(" ") &&
        in.time_of_day(tm) && in.literal(" GMT") && in.at_end())) {
    return std::nullopt;
  }
  // RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years in the future is the most recent
  // year in the past with the same last two digits.
  std::tm now{};
  const std::time_t now_t = std::time(nullptr);
  ::gmtime_r(&now_t, &now);
  const int this_year = now.tm_year + 1900;
  int year = this_year - this_year % 100 + two_digit_year;
  if (year > this_year + 50) year -= 100;
  return to_time(tm, year);
}

// asctime-date = day-name SP date3 SP time-of-day SP year; date3 = month SP ( 2DIGIT / ( SP DIGIT ))
std::optional<std::time_t> parse_asctime_date(std::string_view s) {
  Scanner in(s);
  std::tm tm{};
  int weekday = 0;
  int year = 0;
  if (!(in.one_of(kDayNames, weekday) && in.literal(" ") && in.one_of(kMonthNames, tm.tm_mon) && in.literal(" "))) {
    return std::nullopt;
  }
  const bool day_ok = in.literal(" ") ? in.digits(1, tm.tm_mday) : in.digits(2, tm.tm_mday);
  if (!(day_ok && in.literal(" ") && in.time_of_day(tm) && in.literal(" ") && in.digits(4, year) && in.at_end())) {
    return std::nullopt;
  }
  return to_time(tm, year);
}

}  // namespace

std::string format_http_date(std::time_t t) {
  // Clamp so that the result always has a four-digit year and is always 29 bytes.
  if (t < 0) t = 0;
  if (t > kMaxFormattable) t = kMaxFormattable;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDayNames[static_cast<std::size_t>(tm.tm_wday)].data(), tm.tm_mday,
                kMonthNames[static_cast<std::size_t>(tm.tm_mon)].data(), tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return std::string(buf, 29);
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  // Tolerate optional whitespace around the field value (RFC 9110 §5.5), in case the caller did not trim it.
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.size() > 3 && s[3] == ',') return parse_imf_fixdate(s);
  if (s.size() > 3 && s[3] == ' ') return parse_asctime_date(s);
  return parse_rfc850_date(s);
}

}  // namespace spawnd::server
