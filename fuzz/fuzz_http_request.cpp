// fuzz/fuzz_http_request.cpp — HTTP/1.1 request bytes (RFC 9112) through the llhttp adapter (server/http_parser.h)
// to the CGI meta-variables of each request (script_meta_variables → common/cgi_env.h), as a connection would.
//
// Input: one byte choosing the size of the pieces the bytes are fed in (a connection gets them in arbitrary reads),
// then the bytes of one or more pipelined requests.
// Asserts: the parser consumes no more than it is given and always makes progress or stops; every meta-variable
// name is non-empty and holds no '=' and no NUL, and no value holds a NUL (the fork server passes them as
// "NAME=value\0" entries: common/fork_protocol.h); every meta-variable name occurs once.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <cerrno>

#include "fuzz/fuzz_check.h"
#include "server/gateway/script_request.h"
#include "server/http_parser.h"

namespace {

using spawnd::server::Request;
using spawnd::server::RequestParser;

void check_meta_variables(const Request& request) {
  // A directory prefix, so that the first segment is the script and the rest PATH_INFO. ScriptCheck::None: no
  // file-system access, the mapping and the meta-variables are pure.
  auto mapped = spawnd::server::map_script(request.path, "/cgi-bin/", "/srv/cgi-bin",
                                           spawnd::server::ScriptCheck::None);
  if (!mapped) {
    FUZZ_CHECK(mapped.error().value() == ENOENT);  // ScriptCheck::None never finds a file not executable (EACCES)
    return;
  }
  const spawnd::server::ScriptTarget* target = &*mapped;
  for (bool pass_authorization : {false, true}) {
    const spawnd::server::ScriptServerInfo server{.document_root = "/srv/www", .pass_authorization = pass_authorization};
    std::set<std::string> names;
    for (const auto& [name, value] : spawnd::server::script_meta_variables(request, *target, server)) {
      FUZZ_CHECK(!name.empty());
      FUZZ_CHECK(name.find('=') == std::string::npos);
      FUZZ_CHECK(name.find('\0') == std::string::npos);
      FUZZ_CHECK(value.find('\0') == std::string::npos);
      FUZZ_CHECK(names.insert(name).second);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spawnd::fuzz::FuzzInput input(data, size);
  const std::size_t piece = 1 + input.byte() % 64;
  const std::string_view bytes = input.rest();

  RequestParser parser(/*max_header_bytes=*/8192, /*max_body_bytes=*/65536);
  std::string body;
  std::size_t fed = 0;       // bytes handed to the parser so far (as a connection's read buffer grows)
  std::size_t consumed = 0;  // bytes the parser has used
  bool has_request = false;
  while (consumed < bytes.size()) {
    if (fed < consumed + 1) fed = std::min(bytes.size(), consumed + piece);
    const std::string_view window = bytes.substr(consumed, fed - consumed);
    const RequestParser::Outcome outcome = parser.feed(window, body);
    FUZZ_CHECK(outcome.consumed <= window.size());
    consumed += outcome.consumed;
    if (outcome.status == RequestParser::Status::Error) {
      const int status = parser.error_status();
      FUZZ_CHECK(status == 400 || status == 413 || status == 414 || status == 417 || status == 431 || status == 505);
      return 0;
    }
    if (parser.is_head_done() && !has_request) {
      Request request = parser.take_request();
      request.remote_addr = "192.0.2.1";
      request.remote_port = 40000;
      request.local_addr = "127.0.0.1";
      request.local_port = 8080;
      FUZZ_CHECK(request.version_major == 1);
      check_meta_variables(request);
      has_request = true;
    }
    FUZZ_CHECK(body.size() <= 65536 + 4096);
    body.clear();  // drained, as the connection does
    if (parser.is_message_done()) {
      parser.resume_next();
      has_request = false;
      continue;
    }
    if (outcome.consumed == 0) {
      if (fed == bytes.size()) break;  // everything is given: a partial message waits for more
      fed = std::min(bytes.size(), fed + piece);
    }
  }
  return 0;
}
