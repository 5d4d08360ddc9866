// common/net_resolve.cpp — the getaddrinfo() half of net_addr.h. An object file of its own: a static handler
// executable links net_addr.cpp (parse_numeric, listen_on) and must not pull getaddrinfo() in with it.
#include <netdb.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/net_addr.h"

namespace spawnd::net {

namespace {

class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int e) const override { return ::gai_strerror(e); }
};

}  // namespace

const std::error_category& gai_category() noexcept {
  static const GaiCategory category;
  return category;
}

Result<std::vector<SockAddr>> resolve(const HostPort& hp, Use use) {
  if (use == Use::Connect && hp.host.empty()) return make_error_code(AddrErrc::MissingHost);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // Listen: an empty host is the wildcard address, and the port must be a number (as --listen always required).
  if (use == Use::Listen) hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &res);
  if (rc == EAI_SYSTEM) return errno_code();
  if (rc != 0) return std::error_code(rc, gai_category());
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  std::vector<SockAddr> all;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SockAddr a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    all.push_back(a);
  }
  if (all.empty()) return std::error_code(EAI_NONAME, gai_category());
  return all;
}

Result<SockAddr> resolve_endpoint(std::string_view text) {
  if (text.starts_with("unix:")) return unix_address(text.substr(5));
  Result<HostPort> hp = split_host_port(text);
  if (!hp) return hp.error();
  Result<std::vector<SockAddr>> all = resolve(*hp, Use::Connect);
  if (!all) return all.error();
  return all->front();
}

}  // namespace spawnd::net
