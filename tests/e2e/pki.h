// tests/e2e/pki.h — certificates made at test time with the openssl CLI, for the HTTPS tests (test_https.cpp) and
// the socket-activated HTTPS listener (test_systemd.cpp): a root CA and an intermediate in a temp directory, and the
// leaf certificates they issue, served as full chains. P-256 keys, valid two days. A failing openssl fails the test.
#pragma once

#include <string>
#include <vector>

#include "harness.h"

namespace spawnd::e2e {

class Pki {
 public:
  // Makes the root CA and the intermediate (Catch2 REQUIREs that openssl succeeds).
  Pki();
  // The root CA file clients trust (the intermediate comes from the server's chain).
  [[nodiscard]] std::string ca() const { return path("root.pem"); }
  // A file in the PKI's temp directory (for scratch files such as saved TLS sessions).
  [[nodiscard]] std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  struct Leaf {
    std::string cert;  // full chain: the leaf, then the intermediate
    std::string key;
  };
  // A server certificate for `names` (DNS names, plus 127.0.0.1), subject "CN=<names[0]>, O=<org>", written as
  // <stem>.pem (full chain) and <stem>.key.
  Leaf issue(const std::string& stem, const std::vector<std::string>& names, const std::string& org);
  // A DER OCSP response (RFC 6960) of the intermediate about the leaf issue(stem, ...) made, saying "good" or, with
  // `is_revoked`, "revoked"; made with `openssl ocsp` (a request, then the responder's answer from an index file)
  // and written as <stem>-good.ocsp or <stem>-revoked.ocsp, whose path it returns.
  std::string ocsp_response(const std::string& stem, bool is_revoked);

 private:
  // `openssl req -x509` with a new P-256 key and `args`.
  void make(std::vector<std::string> args);
  TempDir dir_;
};

}  // namespace spawnd::e2e
