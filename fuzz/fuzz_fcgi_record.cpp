// fuzz/fuzz_fcgi_record.cpp — the FastCGI record reader and name-value pairs (common/fcgi_record.h), as both ends
// use them: spawnd's FastCGI client (server/gateway/fastcgi_gateway.cpp reads FCGI_STDOUT / FCGI_STDERR /
// FCGI_END_REQUEST records from an application) and the SDK's application side (handlers/sdk/src/fastcgi_runtime.cpp
// reads FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN and FCGI_GET_VALUES from a web server, then takes CONTENT_LENGTH
// from the params with expect_body()).
//
// Input: one byte choosing the size of the reads, then the byte stream of one connection.
// Asserts: the reader returns records of at most 65535 content bytes, never holds more than one record's worth of
// unreturned bytes, and once Malformed stays Malformed; a record re-encoded with append_record() reads back the same;
// decoded name-value pairs point into their content and re-encode to pairs that decode the same, and the fixed-size bodies of
// FCGI_BEGIN_REQUEST / FCGI_END_REQUEST parse only at 8 bytes and re-encode to a record that parses the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <spawnd/params.h>
#include <spawnd/runtime.h>

#include "common/fcgi_record.h"
#include "fuzz/fuzz_check.h"

namespace fcgi = spawnd::fcgi;

namespace {

// A record header, version 1, and up to 255 bytes of padding.
constexpr std::size_t kMaxRecordBytes = fcgi::kHeaderLength + fcgi::kMaxContentLength + 255;

void check_name_values(std::string_view content) {
  const auto pairs = fcgi::parse_name_values(content);
  if (!pairs) return;
  std::string encoded;
  for (const auto& [name, value] : *pairs) {
    FUZZ_CHECK(name.data() >= content.data() && name.data() + name.size() <= content.data() + content.size());
    FUZZ_CHECK(value.data() >= content.data() && value.data() + value.size() <= content.data() + content.size());
    // A length below 128 may arrive in the 4-byte form and re-encode in 1 byte: compare pairs, not bytes.
    fcgi::append_name_value(encoded, name, value);
  }
  const auto again = fcgi::parse_name_values(encoded);
  FUZZ_CHECK(again.has_value() && *again == *pairs);
}

void check_record(const fcgi::Record& record) {
  FUZZ_CHECK(record.content.size() <= fcgi::kMaxContentLength);
  // Re-encoded, it reads back the same.
  std::string encoded;
  fcgi::append_record(encoded, static_cast<fcgi::RecordType>(record.type), record.request_id, record.content);
  FUZZ_CHECK(encoded.size() % 8 == 0);
  fcgi::RecordReader reader;
  reader.feed(encoded);
  fcgi::Record again;
  FUZZ_CHECK(reader.next(again) == fcgi::RecordReader::Status::Record);
  FUZZ_CHECK(again.type == record.type && again.request_id == record.request_id && again.content == record.content);
  FUZZ_CHECK(reader.next(again) == fcgi::RecordReader::Status::NeedMore && reader.buffered() == 0);

  // What the application side takes from a record.
  if (record.is(fcgi::RecordType::BeginRequest)) {
    const auto body = fcgi::parse_begin_request(record.content);
    FUZZ_CHECK(body.has_value() == (record.content.size() == 8));
    if (body) {
      std::string out;
      fcgi::append_begin_request(out, record.request_id, body->role, body->flags);
      FUZZ_CHECK(out.size() == 16 && out.substr(8, 3) == record.content.substr(0, 3));
    }
  }
  if (record.is(fcgi::RecordType::GetValues)) check_name_values(record.content);
  // What the client side takes from a record.
  if (record.is(fcgi::RecordType::EndRequest)) {
    const auto body = fcgi::parse_end_request(record.content);
    FUZZ_CHECK(body.has_value() == (record.content.size() == 8));
    if (body) {
      std::string out;
      fcgi::append_end_request(out, record.request_id, *body);
      FUZZ_CHECK(out.size() == 16 && out.substr(8, 5) == record.content.substr(0, 5));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spawnd::fuzz::FuzzInput input(data, size);
  const std::size_t piece = 1 + input.byte() % 64;
  const std::string_view stream = input.rest();

  fcgi::RecordReader reader;
  std::string params;  // the FCGI_PARAMS stream, as the application collects it (a pair may span records)
  bool is_malformed = false;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    reader.feed(stream.substr(i, piece));
    fcgi::Record record;
    for (;;) {
      const fcgi::RecordReader::Status status = reader.next(record);
      if (status == fcgi::RecordReader::Status::NeedMore) break;
      if (status == fcgi::RecordReader::Status::Malformed) {
        is_malformed = true;
        break;
      }
      FUZZ_CHECK(!is_malformed);
      check_record(record);
      if (record.is(fcgi::RecordType::Params)) {
        if (!record.content.empty()) {
          params.append(record.content);
          continue;
        }
        // The end of the stream: the application decodes it whole, then reads CONTENT_LENGTH (with small limits).
        check_name_values(params);
        if (const auto pairs = fcgi::parse_name_values(params)) {
          spawnd::sdk::MetaVars meta;
          for (const auto& [name, value] : *pairs) meta.emplace_back(std::string(name), std::string(value));
          spawnd::sdk::Limits limits;
          limits.max_body_bytes = 1024;
          const spawnd::sdk::BodyExpectation expected = spawnd::sdk::expect_body(meta, limits);
          FUZZ_CHECK(expected.length <= limits.max_body_bytes);
          FUZZ_CHECK(expected.error.status == 0 || expected.length == 0);
        }
        params.clear();
      }
    }
    if (is_malformed) break;
    // A partial record is all the reader holds: never more than one record.
    FUZZ_CHECK(reader.buffered() < kMaxRecordBytes);
  }
  return 0;
}
