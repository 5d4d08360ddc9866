// common/cgi_response.h — parses the header block of a CGI response (RFC 3875 §6), shared by the CGI, fork-server
// and FastCGI gateways. Pure code: bytes in, a CgiHead out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spawnd {

// The response types of RFC 3875 §6.2.
enum class CgiResponseKind {
  Document,        // §6.2.1: a body with Content-Type (and Status, default 200)
  LocalRedirect,   // §6.2.2: only "Location: /path"; the server serves that path itself as a new GET
  ClientRedirect,  // §6.2.3/§6.2.4: "Location: scheme:..." → 302 unless Status says otherwise
};

struct CgiHead {
  CgiResponseKind kind = CgiResponseKind::Document;
  int status = 200;
  std::string reason;  // from "Status: 404 Not Found"; empty when the script gave none
  std::vector<std::pair<std::string, std::string>> fields;  // everything but Status (Location stays)
  std::string location;                                    // the Location value, or empty
  std::optional<std::uint64_t> content_length;             // from a valid Content-Length field
};

// Incremental parser: feed() stdout bytes until it returns Done or Error.
class CgiResponseParser {
 public:
  enum class State { NeedMore, Done, Error };

  // `max_header_bytes`: the header block's limit; a longer block is an Error (a script printing garbage without a
  // blank line must not make us buffer forever).
  explicit CgiResponseParser(std::size_t max_header_bytes = 64 * 1024) : max_header_bytes_(max_header_bytes) {}

  // Appends `bytes`. Done: head() is filled, and body_start() bytes of the *accumulated* input belong to the header
  // block; the rest (rest_of_input()) is the first part of the body. Error: error() says why in one line
  // (no header block, a line without ':', an invalid Status, no Content-Type in a document response, too long).
  [[nodiscard]] State feed(std::string_view bytes);
  [[nodiscard]] const CgiHead& head() const noexcept { return head_; }
  [[nodiscard]] CgiHead& head() noexcept { return head_; }
  // After Done: body bytes that arrived with the header block.
  [[nodiscard]] std::string_view rest_of_input() const noexcept {
    return std::string_view(buf_).substr(body_start_);
  }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  State parse_block(std::string_view block);
  State fail(std::string why);

  std::size_t max_header_bytes_;
  std::string buf_;
  std::size_t body_start_ = 0;
  std::size_t scanned_ = 0;     // bytes of buf_ searched for line ends
  std::size_t line_begin_ = 0;  // start of the line being scanned
  CgiHead head_;
  std::string error_;
  State state_ = State::NeedMore;
};

}  // namespace spawnd
