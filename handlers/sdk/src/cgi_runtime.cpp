// cgi_runtime.cpp — the CGI runtime (RFC 3875): meta-variables from the environment (§4.1), the body from stdin
// (§4.2, exactly CONTENT_LENGTH bytes), the response on stdout (§6).
//
// Start-up cost is the whole point of this file: one process serves one request, so nothing here may do work the
// request does not need. No iostreams, no locale, no database (Context::db() opens it on first use), and the
// response leaves in one writev(2).
#include <spawnd/runtime.h>

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/sys.h"

namespace spawnd::sdk {

namespace {

// Writes head and body with as few writev calls as the pipe allows. Returns false on a write error (EPIPE: the
// server went away; SIGPIPE is default in a CGI child, so we rarely get here).
bool write_response(int fd, std::string_view head, std::string_view body) {
  iovec iov[2] = {{const_cast<char*>(head.data()), head.size()}, {const_cast<char*>(body.data()), body.size()}};
  int first = 0;
  const int count = body.empty() ? 1 : 2;
  while (first < count) {
    const ssize_t n = sys::retry_eintr([&] { return ::writev(fd, iov + first, count - first); });
    if (n < 0) return false;
    auto left = static_cast<size_t>(n);
    while (first < count && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

int run_cgi(const HandlerInfo& info, const char* argv0, char** envp) { return run_cgi(info, argv0, envp, nullptr); }

int run_cgi(const HandlerInfo& info, const char* argv0, char** envp, std::unique_ptr<Context> warm) {
  MetaVars meta;
  meta.reserve(48);
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    meta.emplace_back(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }

  // A warm Context (a pre-forked child's) serves only the database the request names; any other gets a fresh one.
  Context::DbConfig db_config = db_config_from(meta);
  std::unique_ptr<Context> fresh;
  if (!warm || !(warm->db_config() == db_config)) {
    warm.reset();
    fresh = std::make_unique<Context>(info, handler_name(info, argv0), std::move(db_config));
  }
  Context& ctx = warm ? *warm : *fresh;

  // The body, bounded by CONTENT_LENGTH and by the handler's limit; refused before it is read when too long.
  BodyExpectation expected = expect_body(meta, info.limits);
  EarlyError early = expected.error;
  std::string body;
  if (early.status == 0 && expected.length > 0) {
    early.status = read_body(STDIN_FILENO, expected.length, body);
    if (early.status == 400) early.message = kShortBodyMessage;
    if (early.status == 500) {
      ctx.log("reading the request body from stdin: %s", std::strerror(errno));
      early.message = "could not read the request body";
    }
  }

  CgiReply reply = answer(info, ctx, std::move(meta), std::move(body), early);
  return write_response(STDOUT_FILENO, reply.head, reply.body()) ? 0 : 1;
}

}  // namespace spawnd::sdk
