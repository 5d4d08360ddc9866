// fuzz/fuzz_cgi_response.cpp — the CGI response header parser (common/cgi_response.h) that every gateway runs a
// handler's output through (CGI, fork server, FastCGI, in-process).
//
// Input: one byte choosing the size of the pieces the output is fed in, then the handler's output.
// Asserts: fed whole or in pieces, the parser reaches the same state with the same head and body start; a Done head
// has a final status (200-599: a 1xx would break the client's framing), a local redirect's Location is a local
// path-query, a client redirect without Status is 302, and no field name or value can split the response we write
// (no CR, LF or NUL; names are tokens); body bytes are exactly what followed the header block. The first line, read
// as an NPH script's status-line, gives a three-digit status or none.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/cgi_response.h"
#include "fuzz/fuzz_check.h"

using spawnd::CgiResponseKind;
using spawnd::CgiResponseParser;

namespace {

constexpr std::size_t kMaxHeaderBytes = 4096;  // small, so that the limit is reached often

CgiResponseParser::State feed_in_pieces(CgiResponseParser& p, std::string_view output, std::size_t piece) {
  CgiResponseParser::State s = CgiResponseParser::State::NeedMore;
  for (std::size_t i = 0; i < output.size() && s == CgiResponseParser::State::NeedMore; i += piece)
    s = p.feed(output.substr(i, piece));
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spawnd::fuzz::FuzzInput input(data, size);
  const std::size_t piece = 1 + input.byte() % 32;
  const std::string_view output = input.rest();

  // The same output as an NPH script's: its first line is a status-line or not.
  if (const auto status = spawnd::parse_status_line(output.substr(0, output.find('\n')))) {
    FUZZ_CHECK(*status >= 0 && *status <= 999 && output.substr(0, 5) == "HTTP/");
  }

  CgiResponseParser whole(kMaxHeaderBytes);
  const CgiResponseParser::State s1 = whole.feed(output);
  CgiResponseParser pieces(kMaxHeaderBytes);
  const CgiResponseParser::State s2 = feed_in_pieces(pieces, output, piece);
  FUZZ_CHECK(s1 == s2);
  if (s1 == CgiResponseParser::State::Error) FUZZ_CHECK(!whole.error().empty());
  if (s1 != CgiResponseParser::State::Done) return 0;

  const spawnd::CgiHead& h = whole.head();
  FUZZ_CHECK(spawnd::is_final_status(h.status));
  FUZZ_CHECK(h.status == pieces.head().status && h.kind == pieces.head().kind);
  FUZZ_CHECK(h.fields == pieces.head().fields && h.location == pieces.head().location);
  FUZZ_CHECK(h.reason == pieces.head().reason && h.content_length == pieces.head().content_length);
  if (h.kind == CgiResponseKind::LocalRedirect) FUZZ_CHECK(spawnd::is_local_path_query(h.location));
  if (h.kind == CgiResponseKind::ClientRedirect) FUZZ_CHECK(h.status == 302);
  for (const auto& [name, value] : h.fields) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(name.find_first_of(std::string_view(":\r\n\0 \t", 6)) == std::string::npos);
    FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  FUZZ_CHECK(h.reason.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  // The body starts right after the header block, whatever was fed after it.
  const std::string_view rest = whole.rest_of_input();
  FUZZ_CHECK(rest.size() <= output.size());
  FUZZ_CHECK(output.substr(output.size() - rest.size()) == rest);
  const std::string_view block = output.substr(0, output.size() - rest.size());
  FUZZ_CHECK(block.size() <= kMaxHeaderBytes && !block.empty() && block.back() == '\n');
  // In pieces, the body start is the same, though fewer body bytes may have come with the last piece.
  const std::string_view rest2 = pieces.rest_of_input();
  FUZZ_CHECK(rest2.size() <= rest.size() && rest.substr(0, rest2.size()) == rest2);
  return 0;
}
