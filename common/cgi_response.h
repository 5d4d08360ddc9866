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

// The statuses a handler may answer with: 200-599, the final responses of RFC 9110 §15. 1xx statuses are interim
// (a 101 would tell the client the connection changed protocol) and anything from 600 up is not HTTP.
[[nodiscard]] constexpr bool is_final_status(int status) noexcept { return status >= 200 && status <= 599; }

// Whether `location` is the local-pathquery of a local-redirect response (RFC 3875 §6.2.2: abs-path [ "?"
// query-string ]): it starts with a single '/' (not "//", an authority), and every byte is a URI character that
// may appear in a path or a query (RFC 3986 §3.3, §3.4) or a well-formed "%XX". So no fragment ('#'), no
// whitespace, CTL, NUL or non-ASCII byte.
[[nodiscard]] bool is_local_path_query(std::string_view location);

// The status code of an NPH script's first line (RFC 3875 §5: it writes the whole response), which must be an HTTP
// status-line (RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ], HTTP-version = "HTTP/" DIGIT "." DIGIT),
// given without its LF (a CR before it is allowed). nullopt if the line is not a status-line.
[[nodiscard]] std::optional<int> parse_status_line(std::string_view line);

// Incremental parser: feed() stdout bytes until it returns Done or Error.
class CgiResponseParser {
 public:
  enum class State { NeedMore, Done, Error };

  // `max_header_bytes`: the header block's limit; a longer block is an Error (a script printing garbage without a
  // blank line must not make us buffer forever).
  explicit CgiResponseParser(std::size_t max_header_bytes = 64 * 1024) : max_header_bytes_(max_header_bytes) {}

  // Appends `bytes`. Done: head() is filled, and body_start() bytes of the *accumulated* input belong to the header
  // block; the rest (rest_of_input()) is the first part of the body. Error: error() says why in one line
  // (no header block, a line without ':', an invalid Status or one outside 200-599 (is_final_status), a local
  // redirect whose Location is not a local path-query (is_local_path_query), no Content-Type in a document
  // response, too long). Every status of a Done head is a final status.
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
