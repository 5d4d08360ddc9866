// fuzz/fuzz_check.h — what the fuzz targets share: FUZZ_CHECK, an assertion that holds in every build (the corpus
// replays run in the release build, where NDEBUG turns assert() off), and FuzzInput, a cursor that takes the
// fuzzer's bytes apart into the arguments of the code under test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// Aborts with the failed condition, so libFuzzer saves the input as a crash and a replay test fails.
#define FUZZ_CHECK(condition)                                                                      \
  do {                                                                                             \
    if (!(condition)) {                                                                            \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #condition);      \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

namespace spawnd::fuzz {

// Reads from the front of the input: small integers (from single bytes, so that mutations of one byte change one
// choice) and the rest as text.
class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  // One byte, or 0 when the input is used up.
  std::uint8_t byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Up to 8 bytes, big-endian.
  std::uint64_t u64(std::size_t bytes = 8) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | byte();
    return v;
  }
  // Text up to the next '\n' (not included; consumed), or all the rest: splits the input into several fields.
  std::string_view line() {
    const std::size_t nl = rest_.find('\n');
    std::string_view out = rest_.substr(0, nl);
    rest_.remove_prefix(nl == std::string_view::npos ? rest_.size() : nl + 1);
    return out;
  }
  std::string_view rest() {
    std::string_view out = rest_;
    rest_ = {};
    return out;
  }
  [[nodiscard]] bool empty() const noexcept { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace spawnd::fuzz
