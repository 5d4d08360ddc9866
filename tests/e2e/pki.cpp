#include "pki.h"

#include <catch2/catch.hpp>

namespace spawnd::e2e {

Pki::Pki() {
  dir_.write("min.cnf", "[req]\ndistinguished_name = dn\n[dn]\n");  // no default extensions: -addext says all
  make({"-keyout", path("root.key"), "-out", path("root.pem"), "-subj", "/CN=spawnd test root",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  make({"-keyout", path("inter.key"), "-out", path("inter.pem"), "-subj", "/CN=spawnd test intermediate",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-CA", path("root.pem"), "-CAkey", path("root.key")});
}

Pki::Leaf Pki::issue(const std::string& stem, const std::vector<std::string>& names, const std::string& org) {
  std::string san = "subjectAltName=IP:127.0.0.1";
  for (const std::string& n : names) san += ",DNS:" + n;
  make({"-keyout", path(stem + ".key"), "-out", path(stem + ".leaf"), "-subj", "/CN=" + names.front() + "/O=" + org,
        "-addext", san, "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
        "-CA", path("inter.pem"), "-CAkey", path("inter.key")});
  dir_.write(stem + ".pem", read_file(path(stem + ".leaf")) + read_file(path("inter.pem")));
  return {path(stem + ".pem"), path(stem + ".key")};
}

std::string Pki::ocsp_response(const std::string& stem, bool is_revoked) {
  const auto openssl = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    const ExitResult r = run_command(argv, 20000);
    INFO(r.stderr_text);
    REQUIRE(exit_code(r) == 0);
    return r.stdout_text;
  };
  const std::string serial = openssl({"x509", "-in", path(stem + ".leaf"), "-noout", "-serial"});  // "serial=HEX\n"
  REQUIRE(serial.starts_with("serial="));
  // The responder's database (openssl ca's index.txt): status, expiry, revocation date, serial, file, subject.
  const std::string status = is_revoked ? "revoked" : "good";
  dir_.write(stem + "-" + status + ".index", std::string(is_revoked ? "R" : "V") + "\t301231000000Z\t" +
                                                 (is_revoked ? "251201000000Z" : "") + "\t" +
                                                 serial.substr(7, serial.size() - 8) + "\tunknown\t/CN=" + stem + "\n");
  openssl({"ocsp", "-issuer", path("inter.pem"), "-cert", path(stem + ".leaf"), "-no_nonce", "-reqout",
           path(stem + ".ocsp-request")});
  const std::string response = path(stem + "-" + status + ".ocsp");
  openssl({"ocsp", "-index", path(stem + "-" + status + ".index"), "-rsigner", path("inter.pem"), "-rkey",
           path("inter.key"), "-CA", path("inter.pem"), "-reqin", path(stem + ".ocsp-request"), "-ndays", "1",
           "-respout", response});
  return response;
}

void Pki::make(std::vector<std::string> args) {
  std::vector<std::string> argv{"openssl", "req", "-config", path("min.cnf"), "-x509", "-newkey", "ec",
                                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"};
  argv.insert(argv.end(), args.begin(), args.end());
  const ExitResult r = run_command(argv, 20000);
  INFO(r.stderr_text);
  REQUIRE(exit_code(r) == 0);
}

}  // namespace spawnd::e2e
