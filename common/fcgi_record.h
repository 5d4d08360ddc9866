// common/fcgi_record.h — the FastCGI 1.0 record codec (FastCGI Specification, Open Market 1996, §3 and §5–§8),
// shared by spawnd's FastCGI client (server/gateway/fastcgi_gateway.cpp) and the handler SDK's FastCGI runtime.
// Pure code: bytes in, records out, and records appended to a byte string. No I/O, no allocation per record beyond
// the caller's buffers.
//
// A record (§3.3) is an 8-byte header — version (1), type, requestId (2, big-endian), contentLength (2),
// paddingLength, reserved — then contentLength bytes of content and paddingLength bytes of padding. Streams
// (FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR, FCGI_DATA) are a series of records ended by one with empty
// content (§3.3). Name-value pairs (§3.4) encode each length in 1 byte when < 128, else in 4 bytes with the top bit
// set. Management records (FCGI_GET_VALUES, _RESULT, FCGI_UNKNOWN_TYPE) use request id 0 (FCGI_NULL_REQUEST_ID).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spawnd::fcgi {

inline constexpr std::uint8_t kVersion1 = 1;            // FCGI_VERSION_1
inline constexpr std::size_t kHeaderLength = 8;         // FCGI_HEADER_LEN, bytes
inline constexpr std::size_t kMaxContentLength = 65535;  // the largest content of one record, bytes
inline constexpr std::uint16_t kNullRequestId = 0;      // FCGI_NULL_REQUEST_ID: management records

// The record types of §8 (FCGI_BEGIN_REQUEST = 1 ... FCGI_UNKNOWN_TYPE = 11).
enum class RecordType : std::uint8_t {
  BeginRequest = 1,
  AbortRequest = 2,
  EndRequest = 3,
  Params = 4,
  Stdin = 5,
  Stdout = 6,
  Stderr = 7,
  Data = 8,
  GetValues = 9,
  GetValuesResult = 10,
  UnknownType = 11,
};

// FCGI_BeginRequestBody.role (§5.1).
enum class Role : std::uint16_t { Responder = 1, Authorizer = 2, Filter = 3 };
inline constexpr std::uint8_t kKeepConn = 1;  // FCGI_KEEP_CONN, FCGI_BeginRequestBody.flags

// FCGI_EndRequestBody.protocolStatus (§5.5).
enum class ProtocolStatus : std::uint8_t {
  RequestComplete = 0,  // FCGI_REQUEST_COMPLETE
  CantMpxConn = 1,      // FCGI_CANT_MPX_CONN: the application takes one request per connection
  Overloaded = 2,       // FCGI_OVERLOADED
  UnknownRole = 3,      // FCGI_UNKNOWN_ROLE
};

// The FCGI_GET_VALUES variable names (§4.1).
inline constexpr std::string_view kMaxConns = "FCGI_MAX_CONNS";
inline constexpr std::string_view kMaxReqs = "FCGI_MAX_REQS";
inline constexpr std::string_view kMpxsConns = "FCGI_MPXS_CONNS";

// One decoded record. `type` is the raw byte: unknown types must be answered with FCGI_UNKNOWN_TYPE (§4.2), so they
// are not errors of the codec. `content` points into the RecordReader's buffer (see RecordReader::next()).
struct Record {
  std::uint8_t type = 0;
  std::uint16_t request_id = 0;
  std::string_view content;
  [[nodiscard]] bool is(RecordType t) const noexcept { return type == static_cast<std::uint8_t>(t); }
};

struct BeginRequestBody {
  Role role = Role::Responder;  // may hold a value outside the enum: the raw role, to answer FCGI_UNKNOWN_ROLE
  std::uint8_t flags = 0;
  [[nodiscard]] bool keep_conn() const noexcept { return (flags & kKeepConn) != 0; }
};

struct EndRequestBody {
  std::uint32_t app_status = 0;  // the application's exit status, as CGI's would be
  ProtocolStatus protocol_status = ProtocolStatus::RequestComplete;
};

// Incremental decoder of a byte stream into records: feed() what read(2) returned, then call next() until it says
// NeedMore. Strict: a header whose version is not 1 is Malformed; after that the stream cannot be resynchronised, so
// drop the connection. A record is at most 8 + 65535 + 255 bytes by construction, which bounds the buffer.
class RecordReader {
 public:
  enum class Status { Record, NeedMore, Malformed };

  void feed(std::string_view bytes);
  // Record: `out` holds the next record; its content stays valid until the next feed() or next() call.
  [[nodiscard]] Status next(Record& out);
  // Bytes fed and not yet returned as records (a partial record).
  [[nodiscard]] std::size_t buffered() const noexcept { return buf_.size() - pos_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;  // start of the first unreturned byte in buf_
};

// ---- Encoding: each function appends whole records to `out`. -------------------------------------------------------

// A record of `type` with `content` (at most kMaxContentLength bytes), padded to a multiple of 8 bytes (§3.3
// recommends 8-byte alignment).
void append_record(std::string& out, RecordType type, std::uint16_t request_id, std::string_view content);
// Stream data: `bytes` split into records of at most kMaxContentLength bytes each. Appends nothing for empty
// `bytes` — an empty record would end the stream; use append_stream_end() for that.
void append_stream(std::string& out, RecordType type, std::uint16_t request_id, std::string_view bytes);
// The empty record that ends a stream (FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR, FCGI_DATA).
void append_stream_end(std::string& out, RecordType type, std::uint16_t request_id);

void append_begin_request(std::string& out, std::uint16_t request_id, Role role, std::uint8_t flags);
void append_end_request(std::string& out, std::uint16_t request_id, EndRequestBody body);
void append_abort_request(std::string& out, std::uint16_t request_id);
// FCGI_UNKNOWN_TYPE (§4.2) for a management record of type `type` the application does not know.
void append_unknown_type(std::string& out, std::uint8_t type);

// One name-value pair (§3.4), the content format of FCGI_PARAMS, FCGI_GET_VALUES and FCGI_GET_VALUES_RESULT.
// Lengths up to 2^31 - 1 bytes; longer ones are a programming error (asserted).
void append_name_value(std::string& out, std::string_view name, std::string_view value);

// Decodes the name-value pairs of `content` (the concatenated content of a whole FCGI_PARAMS stream, or of one
// FCGI_GET_VALUES record). nullopt if a length runs past the end of `content` (truncated or oversized lengths).
// The views point into `content`.
[[nodiscard]] std::optional<std::vector<std::pair<std::string_view, std::string_view>>> parse_name_values(
    std::string_view content);

// The fixed-size bodies of §5.1 and §5.5; nullopt unless `content` is exactly 8 bytes.
[[nodiscard]] std::optional<BeginRequestBody> parse_begin_request(std::string_view content);
[[nodiscard]] std::optional<EndRequestBody> parse_end_request(std::string_view content);

}  // namespace spawnd::fcgi
