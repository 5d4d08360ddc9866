#include "server/response_writer.h"

#include <cstdio>
#include <cstdlib>

#include "common/ascii.h"
#include "common/http_status.h"

namespace spawnd::server {

bool ResponseWriter::write_head(std::string& out, const ResponseHead& head, bool keep_alive, std::string_view date,
                                std::string_view extra_fields) {
  const int status = head.status;
  status_ = status;
  is_head_written_ = true;
  is_body_suppressed_ = is_head_request_ || status == 204 || status == 304 || status < 200;
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += head.reason.empty() ? std::string_view(reason_phrase(status)) : std::string_view(head.reason);
  out += "\r\nDate: ";
  out += date;
  out += "\r\nServer: spawnd\r\n";
  for (const auto& [name, value] : head.fields) {
    if (is_server_owned_field(name)) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += extra_fields;
  if (head.content_length) {
    if (status != 204 && status != 304) {
      out += "Content-Length: ";
      out += std::to_string(*head.content_length);
      out += "\r\n";
    }
  } else if (!is_body_suppressed_) {
    if (version_minor_ >= 1) {
      out += "Transfer-Encoding: chunked\r\n";
      is_chunked_ = true;
    } else {
      keep_alive = false;  // HTTP/1.0 without a length: the close delimits the body (RFC 9112 §6.3)
    }
  }
  end_head(out, keep_alive);
  return keep_alive;
}

void ResponseWriter::end_head(std::string& out, bool keep_alive) const {
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version_minor_ == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

bool ResponseWriter::write_encoded_head(std::string& out, std::string_view encoded_fields, bool keep_alive,
                                        std::string_view date, std::string_view extra_fields) {
  status_ = 200;
  is_head_written_ = true;
  is_body_suppressed_ = is_head_request_;
  out += "HTTP/1.1 200 OK\r\nDate: ";
  out += date;
  out += "\r\nServer: spawnd\r\n";
  out += encoded_fields;
  out += extra_fields;
  end_head(out, keep_alive);
  return keep_alive;
}

void ResponseWriter::write_body(std::string& out, std::string_view bytes) {
  if (is_body_suppressed_ || bytes.empty()) return;
  body_bytes_ += bytes.size();
  if (is_chunked_) {
    char size_line[32];
    const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", bytes.size());
    out.append(size_line, static_cast<std::size_t>(n));
    out += bytes;
    out += "\r\n";
  } else {
    out += bytes;
  }
}

bool ResponseWriter::count_body(std::uint64_t n) noexcept {
  if (is_body_suppressed_) return false;
  body_bytes_ += n;
  return true;
}

void ResponseWriter::write_end(std::string& out) {
  if (is_chunked_ && !is_body_suppressed_) out += "0\r\n\r\n";
}

void ResponseWriter::note_raw(std::string_view bytes) {
  if (!is_raw_) {
    is_raw_ = true;
    is_head_written_ = true;
    status_ = 200;
    // "HTTP/1.1 404 ...": the status code is the three digits after "HTTP/x.y ".
    if (bytes.size() >= 12 && bytes.substr(0, 5) == "HTTP/")
      status_ = std::atoi(std::string(bytes.substr(9, 3)).c_str());
  }
  body_bytes_ += bytes.size();
}

bool is_server_owned_field(std::string_view name) noexcept {
  return iequals(name, "Connection") || iequals(name, "Keep-Alive") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Content-Length") || iequals(name, "Date") || iequals(name, "Server") ||
         iequals(name, "Upgrade") || iequals(name, "Proxy-Connection") || iequals(name, "TE") ||
         iequals(name, "Trailer");
}

int status_for(GatewayError error) noexcept {
  switch (error) {
    case GatewayError::BadGateway: return 502;
    case GatewayError::GatewayTimeout: return 504;
    case GatewayError::ServiceUnavailable: return 503;
    case GatewayError::Internal: return 500;
  }
  return 500;
}

ResponseHead error_head(int status, std::uint64_t page_bytes) {
  ResponseHead head;
  head.status = status;
  head.fields.emplace_back("Content-Type", "text/html; charset=utf-8");
  if (status == 503) head.fields.emplace_back("Retry-After", "1");
  head.content_length = page_bytes;
  return head;
}

}  // namespace spawnd::server
