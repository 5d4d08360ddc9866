// Unit tests for common/fcgi_record.h, the FastCGI 1.0 record codec: round trips of every record type, byte-exact
// headers against the spec's layout (§3.3, §5), content split across records, padding, name-value lengths at the
// 1-byte/4-byte boundary, byte-at-a-time feeding, and malformed input (bad version, truncated or oversized lengths).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fcgi_record.h"

namespace fcgi = spawnd::fcgi;
using fcgi::RecordReader;
using fcgi::RecordType;
using Status = RecordReader::Status;

namespace {

struct Decoded {
  std::uint8_t type;
  std::uint16_t request_id;
  std::string content;
};

// Decodes all of `bytes`, fed `chunk` bytes at a time; fails the test on Malformed or leftover bytes.
std::vector<Decoded> decode_all(std::string_view bytes, std::size_t chunk = 1 << 20) {
  RecordReader reader;
  std::vector<Decoded> out;
  for (std::size_t i = 0; i < bytes.size(); i += chunk) {
    reader.feed(bytes.substr(i, chunk));
    fcgi::Record r;
    Status s;
    while ((s = reader.next(r)) == Status::Record) out.push_back({r.type, r.request_id, std::string(r.content)});
    REQUIRE(s == Status::NeedMore);
  }
  CHECK(reader.buffered() == 0);
  return out;
}

std::string bytes(std::initializer_list<unsigned> values) {
  std::string s;
  for (unsigned v : values) s.push_back(static_cast<char>(v));
  return s;
}

}  // namespace

TEST_CASE("fcgi: FCGI_BEGIN_REQUEST is encoded byte for byte as in spec section 5.1", "[fcgi]") {
  std::string out;
  fcgi::append_begin_request(out, 0x0102, fcgi::Role::Responder, fcgi::kKeepConn);
  CHECK(out == bytes({1, 1, 0x01, 0x02, 0, 8, 0, 0, /*body*/ 0, 1, 1, 0, 0, 0, 0, 0}));
  const auto records = decode_all(out);
  REQUIRE(records.size() == 1);
  const auto body = fcgi::parse_begin_request(records[0].content);
  REQUIRE(body);
  CHECK(body->role == fcgi::Role::Responder);
  CHECK(body->keep_conn());
}

TEST_CASE("fcgi: FCGI_END_REQUEST carries the app status and protocol status", "[fcgi]") {
  std::string out;
  fcgi::append_end_request(out, 7, {.app_status = 0x01020304, .protocol_status = fcgi::ProtocolStatus::Overloaded});
  CHECK(out == bytes({1, 3, 0, 7, 0, 8, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0}));
  const auto records = decode_all(out);
  REQUIRE(records.size() == 1);
  const auto body = fcgi::parse_end_request(records[0].content);
  REQUIRE(body);
  CHECK(body->app_status == 0x01020304U);
  CHECK(body->protocol_status == fcgi::ProtocolStatus::Overloaded);
}

TEST_CASE("fcgi: every record type round-trips with its request id and content", "[fcgi]") {
  std::string out;
  fcgi::append_begin_request(out, 1, fcgi::Role::Responder, 0);
  fcgi::append_stream(out, RecordType::Params, 1, "params");
  fcgi::append_stream_end(out, RecordType::Params, 1);
  fcgi::append_stream(out, RecordType::Stdin, 1, "body");
  fcgi::append_stream_end(out, RecordType::Stdin, 1);
  fcgi::append_stream(out, RecordType::Data, 1, "data");
  fcgi::append_stream(out, RecordType::Stdout, 1, "Status: 200 OK\r\n\r\n");
  fcgi::append_stream(out, RecordType::Stderr, 1, "oops\n");
  fcgi::append_abort_request(out, 1);
  fcgi::append_end_request(out, 1, {});
  fcgi::append_record(out, RecordType::GetValues, fcgi::kNullRequestId, "");
  fcgi::append_record(out, RecordType::GetValuesResult, fcgi::kNullRequestId, "");
  fcgi::append_unknown_type(out, 42);

  const auto records = decode_all(out);
  const std::vector<std::pair<RecordType, std::string>> expected = {
      {RecordType::BeginRequest, bytes({0, 1, 0, 0, 0, 0, 0, 0})},
      {RecordType::Params, "params"},
      {RecordType::Params, ""},
      {RecordType::Stdin, "body"},
      {RecordType::Stdin, ""},
      {RecordType::Data, "data"},
      {RecordType::Stdout, "Status: 200 OK\r\n\r\n"},
      {RecordType::Stderr, "oops\n"},
      {RecordType::AbortRequest, ""},
      {RecordType::EndRequest, bytes({0, 0, 0, 0, 0, 0, 0, 0})},
      {RecordType::GetValues, ""},
      {RecordType::GetValuesResult, ""},
      {RecordType::UnknownType, bytes({42, 0, 0, 0, 0, 0, 0, 0})},
  };
  REQUIRE(records.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("record " << i);
    CHECK(records[i].type == static_cast<std::uint8_t>(expected[i].first));
    CHECK(records[i].content == expected[i].second);
    const bool management = i >= 10;
    CHECK(records[i].request_id == (management ? 0 : 1));
  }
}

TEST_CASE("fcgi: records are padded to a multiple of 8 bytes and the padding is skipped", "[fcgi]") {
  for (std::size_t n : {0, 1, 7, 8, 9, 15, 16, 100}) {
    INFO("content length " << n);
    std::string out;
    fcgi::append_record(out, RecordType::Stdout, 3, std::string(n, 'x'));
    CHECK(out.size() % 8 == 0);
    CHECK(out.size() == fcgi::kHeaderLength + (n + 7) / 8 * 8);
    CHECK(static_cast<unsigned char>(out[6]) == (8 - n % 8) % 8);
    const auto records = decode_all(out);
    REQUIRE(records.size() == 1);
    CHECK(records[0].content == std::string(n, 'x'));
  }
}

TEST_CASE("fcgi: a foreign application's unpadded records and odd padding decode too", "[fcgi]") {
  // contentLength 3, paddingLength 255 (any padding is allowed, spec section 3.3), then an unpadded record.
  std::string in = bytes({1, 6, 0, 1, 0, 3, 255, 0}) + "abc" + std::string(255, '\xee');
  in += bytes({1, 6, 0, 1, 0, 2, 0, 0}) + "de";
  const auto records = decode_all(in, 5);
  REQUIRE(records.size() == 2);
  CHECK(records[0].content == "abc");
  CHECK(records[1].content == "de");
}

TEST_CASE("fcgi: stream data longer than 65535 bytes is split across records", "[fcgi]") {
  std::string big(fcgi::kMaxContentLength * 2 + 10, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::string out;
  fcgi::append_stream(out, RecordType::Stdin, 9, big);
  const auto records = decode_all(out, 4096);
  REQUIRE(records.size() == 3);
  CHECK(records[0].content.size() == fcgi::kMaxContentLength);
  CHECK(records[1].content.size() == fcgi::kMaxContentLength);
  CHECK(records[2].content.size() == 10);
  CHECK(records[0].content + records[1].content + records[2].content == big);

  std::string none;
  fcgi::append_stream(none, RecordType::Stdin, 9, "");
  CHECK(none.empty());  // an empty record would end the stream
}

TEST_CASE("fcgi: records fed one byte at a time come out whole", "[fcgi]") {
  std::string out;
  fcgi::append_stream(out, RecordType::Stdout, 1, "hello");
  fcgi::append_end_request(out, 1, {});
  const auto records = decode_all(out, 1);
  REQUIRE(records.size() == 2);
  CHECK(records[0].content == "hello");
  CHECK(records[1].type == static_cast<std::uint8_t>(RecordType::EndRequest));
}

TEST_CASE("fcgi: name-value pairs use 1-byte lengths below 128 and 4-byte lengths from 128", "[fcgi]") {
  std::string out;
  fcgi::append_name_value(out, "A", "");
  CHECK(out == bytes({1, 0, 'A'}));

  out.clear();
  fcgi::append_name_value(out, std::string(127, 'n'), std::string(128, 'v'));
  REQUIRE(out.size() == 1 + 4 + 127 + 128);
  CHECK(static_cast<unsigned char>(out[0]) == 127);
  CHECK(out.substr(1, 4) == bytes({0x80, 0, 0, 128}));

  std::string params;
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"REQUEST_METHOD", "GET"}, {"QUERY_STRING", ""}, {"HTTP_X_BIG", std::string(70000, 'b')}, {"", "empty name"}};
  for (const auto& [n, v] : pairs) fcgi::append_name_value(params, n, v);
  const auto parsed = fcgi::parse_name_values(params);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    CHECK((*parsed)[i].first == pairs[i].first);
    CHECK((*parsed)[i].second == pairs[i].second);
  }
}

TEST_CASE("fcgi: malformed input is refused, never read past its end", "[fcgi]") {
  SECTION("a header with version 2 is Malformed") {
    RecordReader reader;
    reader.feed(bytes({2, 6, 0, 1, 0, 0, 0, 0}));
    fcgi::Record r;
    CHECK(reader.next(r) == Status::Malformed);
  }
  SECTION("a header alone announcing content waits for it") {
    RecordReader reader;
    reader.feed(bytes({1, 6, 0, 1, 0xff, 0xff, 0xff, 0}));
    fcgi::Record r;
    CHECK(reader.next(r) == Status::NeedMore);
    CHECK(reader.buffered() == 8);
  }
  SECTION("name-value lengths that run past the content") {
    const std::vector<std::string> bad = {
        bytes({5}),                           // name length, no value length
        bytes({0x80, 0, 0}),                  // a 4-byte length cut short
        bytes({3, 0, 'a', 'b'}),              // name shorter than announced
        bytes({1, 3, 'a', 'b'}),              // value shorter than announced
        bytes({0xff, 0xff, 0xff, 0xff, 0}),   // 2^31 - 1 byte name in a 5-byte content
        bytes({1, 0xff, 0xff, 0xff, 0xff}),   // a value length past the end
    };
    for (const std::string& content : bad) {
      INFO("content of " << content.size() << " bytes");
      CHECK_FALSE(fcgi::parse_name_values(content));
    }
    CHECK(fcgi::parse_name_values("")->empty());
  }
  SECTION("fixed-size bodies of the wrong size") {
    CHECK_FALSE(fcgi::parse_begin_request(bytes({0, 1, 1})));
    CHECK_FALSE(fcgi::parse_end_request(std::string(9, '\0')));
    CHECK(fcgi::parse_begin_request(bytes({0, 9, 0, 0, 0, 0, 0, 0}))->role == static_cast<fcgi::Role>(9));
  }
}
