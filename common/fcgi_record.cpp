// common/fcgi_record.cpp — FastCGI 1.0 record encoding and decoding (see fcgi_record.h).
#include "common/fcgi_record.h"

#include <cassert>

namespace spawnd::fcgi {
namespace {

constexpr std::size_t kMaxNameValueLength = 0x7fffffff;

char byte(unsigned v) { return static_cast<char>(static_cast<unsigned char>(v & 0xffU)); }
unsigned at(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

void append_header(std::string& out, std::uint8_t type, std::uint16_t request_id, std::size_t content_length,
                   std::size_t padding_length) {
  const char header[kHeaderLength] = {
      byte(kVersion1),          byte(type),           byte(request_id >> 8U), byte(request_id),
      byte(content_length >> 8U), byte(content_length), byte(padding_length), 0};
  out.append(header, kHeaderLength);
}

void append_raw(std::string& out, std::uint8_t type, std::uint16_t request_id, std::string_view content) {
  assert(content.size() <= kMaxContentLength);
  const std::size_t padding = (8 - content.size() % 8) % 8;
  append_header(out, type, request_id, content.size(), padding);
  out.append(content);
  out.append(padding, '\0');
}

void append_length(std::string& out, std::size_t n) {
  assert(n <= kMaxNameValueLength);
  if (n < 128) {
    out.push_back(byte(static_cast<unsigned>(n)));
    return;
  }
  const auto v = static_cast<std::uint32_t>(n);
  out.push_back(byte((v >> 24U) | 0x80U));
  out.push_back(byte(v >> 16U));
  out.push_back(byte(v >> 8U));
  out.push_back(byte(v));
}

// Reads a §3.4 length at `pos`, advancing it; nullopt if the bytes run out.
std::optional<std::size_t> read_length(std::string_view s, std::size_t& pos) {
  if (pos >= s.size()) return std::nullopt;
  if ((at(s, pos) & 0x80U) == 0) return at(s, pos++);
  if (s.size() - pos < 4) return std::nullopt;
  const std::size_t n = ((at(s, pos) & 0x7fU) << 24U) | (at(s, pos + 1) << 16U) | (at(s, pos + 2) << 8U) | at(s, pos + 3);
  pos += 4;
  return n;
}

}  // namespace

void RecordReader::feed(std::string_view bytes) {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

RecordReader::Status RecordReader::next(Record& out) {
  const std::string_view rest = std::string_view(buf_).substr(pos_);
  if (rest.size() < kHeaderLength) return Status::NeedMore;
  if (at(rest, 0) != kVersion1) return Status::Malformed;
  const std::size_t content_length = (at(rest, 4) << 8U) | at(rest, 5);
  const std::size_t padding_length = at(rest, 6);
  const std::size_t total = kHeaderLength + content_length + padding_length;
  if (rest.size() < total) return Status::NeedMore;
  out.type = static_cast<std::uint8_t>(at(rest, 1));
  out.request_id = static_cast<std::uint16_t>((at(rest, 2) << 8U) | at(rest, 3));
  out.content = rest.substr(kHeaderLength, content_length);
  pos_ += total;
  return Status::Record;
}

void append_record(std::string& out, RecordType type, std::uint16_t request_id, std::string_view content) {
  append_raw(out, static_cast<std::uint8_t>(type), request_id, content);
}

void append_stream(std::string& out, RecordType type, std::uint16_t request_id, std::string_view bytes) {
  while (!bytes.empty()) {
    const std::string_view part = bytes.substr(0, kMaxContentLength);
    append_record(out, type, request_id, part);
    bytes.remove_prefix(part.size());
  }
}

void append_stream_end(std::string& out, RecordType type, std::uint16_t request_id) {
  append_record(out, type, request_id, {});
}

void append_begin_request(std::string& out, std::uint16_t request_id, Role role, std::uint8_t flags) {
  const auto r = static_cast<unsigned>(role);
  const char body[8] = {byte(r >> 8U), byte(r), byte(flags), 0, 0, 0, 0, 0};
  append_record(out, RecordType::BeginRequest, request_id, std::string_view(body, sizeof body));
}

void append_end_request(std::string& out, std::uint16_t request_id, EndRequestBody b) {
  const char body[8] = {byte(b.app_status >> 24U), byte(b.app_status >> 16U),
                        byte(b.app_status >> 8U),  byte(b.app_status),
                        byte(static_cast<unsigned>(b.protocol_status)), 0, 0, 0};
  append_record(out, RecordType::EndRequest, request_id, std::string_view(body, sizeof body));
}

void append_abort_request(std::string& out, std::uint16_t request_id) {
  append_record(out, RecordType::AbortRequest, request_id, {});
}

void append_unknown_type(std::string& out, std::uint8_t type) {
  const char body[8] = {byte(type), 0, 0, 0, 0, 0, 0, 0};
  append_record(out, RecordType::UnknownType, kNullRequestId, std::string_view(body, sizeof body));
}

void append_name_value(std::string& out, std::string_view name, std::string_view value) {
  append_length(out, name.size());
  append_length(out, value.size());
  out.append(name);
  out.append(value);
}

std::optional<std::vector<std::pair<std::string_view, std::string_view>>> parse_name_values(
    std::string_view content) {
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  std::size_t pos = 0;
  while (pos < content.size()) {
    const std::optional<std::size_t> name_length = read_length(content, pos);
    if (!name_length) return std::nullopt;
    const std::optional<std::size_t> value_length = read_length(content, pos);
    if (!value_length) return std::nullopt;
    if (*name_length > content.size() - pos || *value_length > content.size() - pos - *name_length) {
      return std::nullopt;
    }
    pairs.emplace_back(content.substr(pos, *name_length), content.substr(pos + *name_length, *value_length));
    pos += *name_length + *value_length;
  }
  return pairs;
}

std::optional<BeginRequestBody> parse_begin_request(std::string_view content) {
  if (content.size() != 8) return std::nullopt;
  return BeginRequestBody{.role = static_cast<Role>((at(content, 0) << 8U) | at(content, 1)),
                          .flags = static_cast<std::uint8_t>(at(content, 2))};
}

std::optional<EndRequestBody> parse_end_request(std::string_view content) {
  if (content.size() != 8) return std::nullopt;
  return EndRequestBody{
      .app_status = (static_cast<std::uint32_t>(at(content, 0)) << 24U) | (at(content, 1) << 16U) |
                    (at(content, 2) << 8U) | at(content, 3),
      .protocol_status = static_cast<ProtocolStatus>(at(content, 4))};
}

}  // namespace spawnd::fcgi
