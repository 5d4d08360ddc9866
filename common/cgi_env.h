// common/cgi_env.h — the CGI meta-variables of one request (RFC 3875 §4.1), built once for every gateway that
// needs them: CGI (the child's environment), the fork server (sent over its control socket) and FastCGI
// (FCGI_PARAMS). Pure code: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spawnd {

// Everything the meta-variables are derived from. Views must outlive the build_cgi_env() call.
struct CgiRequestInfo {
  std::string_view method;           // REQUEST_METHOD
  std::string_view protocol;         // SERVER_PROTOCOL, "HTTP/1.1"
  std::string_view request_uri;      // REQUEST_URI: the request-target as sent
  std::string_view query;            // QUERY_STRING: as sent, without '?' (always set, possibly empty)
  std::string_view script_name;      // SCRIPT_NAME: "/cgi-bin/env"
  std::string_view path_info;        // PATH_INFO: decoded extra path "/a/b", or empty (then unset)
  std::string_view script_filename;  // SCRIPT_FILENAME: absolute path of the program
  std::string_view document_root;    // DOCUMENT_ROOT: absolute; PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO
  std::string_view server_name;      // SERVER_NAME: from the Host field without port, else the local address
  std::uint16_t server_port = 0;     // SERVER_PORT
  std::string_view server_software;  // SERVER_SOFTWARE, "spawnd/VERSION" (the CMake project version)
  std::string_view remote_addr;      // REMOTE_ADDR
  std::uint16_t remote_port = 0;     // REMOTE_PORT
  std::optional<std::uint64_t> content_length;  // CONTENT_LENGTH, only when there is a body
  bool is_https = false;                        // HTTPS=on, REQUEST_SCHEME=https (else http)
  std::span<const std::pair<std::string, std::string>> fields;  // request header fields, names as sent
  bool pass_authorization = false;  // also pass Authorization as HTTP_AUTHORIZATION
};

// Returns the meta-variables as (name, value) pairs: GATEWAY_INTERFACE=CGI/1.1, SERVER_*, REQUEST_METHOD,
// QUERY_STRING, SCRIPT_NAME, PATH_INFO and PATH_TRANSLATED (only with extra path), REMOTE_ADDR, REMOTE_PORT,
// CONTENT_LENGTH and CONTENT_TYPE (only with a body / the field), REQUEST_URI, DOCUMENT_ROOT, SCRIPT_FILENAME,
// REDIRECT_STATUS=200 (php-cgi refuses to run without it), HTTPS (when on), REQUEST_SCHEME ("http" or "https", as
// Apache and nginx's fastcgi_params set it; applications build absolute URLs from it), and one HTTP_<NAME> per header field
// name (uppercased, '-' → '_'; repeated fields joined with ", ", Cookie with "; "), except:
//   - Proxy: never (httpoxy, CVE-2016-5385: HTTP_PROXY would become a proxy setting of the script);
//   - Content-Length / Content-Type: they are CONTENT_LENGTH / CONTENT_TYPE already;
//   - Authorization: only with `pass_authorization` (RFC 3875 §4.1.18 leaves it to the server);
//   - names with characters other than letters, digits and '-' (they could alias another name once '_' is used).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> build_cgi_env(const CgiRequestInfo& info);

}  // namespace spawnd
