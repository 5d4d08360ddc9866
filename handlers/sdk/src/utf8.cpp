// utf8.cpp — UTF-8 validation (spawnd/utf8.h), after the well-formed byte sequences table of Unicode §3.9 (D92).
#include <spawnd/utf8.h>

namespace spawnd::sdk {

std::optional<size_t> utf8_length(std::string_view text) noexcept {
  size_t count = 0;
  size_t i = 0;
  const size_t n = text.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  auto in = [](unsigned char b, unsigned char lo, unsigned char hi) { return b >= lo && b <= hi; };
  while (i < n) {
    const unsigned char b0 = byte(i);
    size_t len;
    if (b0 < 0x80) {
      len = 1;
    } else if (in(b0, 0xC2, 0xDF)) {
      len = 2;
      if (i + 1 >= n || !in(byte(i + 1), 0x80, 0xBF)) return std::nullopt;
    } else if (in(b0, 0xE0, 0xEF)) {
      len = 3;
      if (i + 2 >= n) return std::nullopt;
      // E0: no overlongs (A0..BF); ED: no surrogates (80..9F).
      const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
      if (!in(byte(i + 1), lo, hi) || !in(byte(i + 2), 0x80, 0xBF)) return std::nullopt;
    } else if (in(b0, 0xF0, 0xF4)) {
      len = 4;
      if (i + 3 >= n) return std::nullopt;
      // F0: no overlongs (90..BF); F4: nothing above U+10FFFF (80..8F).
      const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
      if (!in(byte(i + 1), lo, hi) || !in(byte(i + 2), 0x80, 0xBF) || !in(byte(i + 3), 0x80, 0xBF))
        return std::nullopt;
    } else {
      return std::nullopt;  // 80..C1 and F5..FF never start a sequence
    }
    i += len;
    ++count;
  }
  return count;
}

}  // namespace spawnd::sdk
