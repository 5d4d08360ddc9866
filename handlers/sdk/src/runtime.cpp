// runtime.cpp — the transport-independent half of every runtime (spawnd/runtime.h).
#include <spawnd/runtime.h>

#include <common/sys.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace spawnd::sdk {

namespace {

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

bool status_has_body(int status) noexcept { return status >= 200 && status != 204 && status != 304; }

}  // namespace

Response run_handler(const HandlerInfo& info, Request& req, Context& ctx) noexcept {
  std::exception_ptr failure;
  try {
    return info.fn(req, ctx);
  } catch (...) {
    failure = std::current_exception();
  }
  ErrorClass c = ctx.classify(failure);
  if (c.log) {
    std::string what = what_of(failure);
    ctx.log("%.*s %.*s: %d: %s", static_cast<int>(req.method().size()), req.method().data(),
            static_cast<int>(req.path().size()), req.path().c_str(), c.status, what.c_str());
  }
  Response resp = ctx.error(c.status, c.message);
  if (c.retry_after_s > 0) resp.set_header("Retry-After", std::to_string(c.retry_after_s));
  return resp;
}

std::string cgi_response_head(const Response& resp) {
  std::string head;
  head.reserve(128);
  char line[64];
  std::snprintf(line, sizeof line, "Status: %d %s\r\n", resp.status(), reason_phrase(resp.status()));
  head += line;
  for (const auto& [name, value] : resp.headers()) {
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (status_has_body(resp.status())) {
    if (!resp.header("Content-Type"))
      head += resp.body().empty() ? "Content-Type: text/plain\r\n" : "Content-Type: application/octet-stream\r\n";
    std::snprintf(line, sizeof line, "Content-Length: %zu\r\n", resp.body().size());
    head += line;
  }
  head += "\r\n";
  return head;
}

bool response_has_body(const Response& resp, std::string_view method) noexcept {
  return status_has_body(resp.status()) && method != "HEAD";
}

bool parse_content_length(std::string_view text, size_t& out) noexcept {
  out = 0;
  if (text.empty()) return true;
  if (text.size() > 18) return false;  // > 10^18 bytes: nobody sends that, and it keeps the sum below overflow
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<size_t>(c - '0');
  }
  return true;
}

BodyExpectation expect_body(const MetaVars& meta, const Limits& limits) noexcept {
  BodyExpectation out;
  std::string_view content_length;
  for (const auto& [n, v] : meta)
    if (n == "CONTENT_LENGTH") {
      content_length = v;
      break;
    }
  size_t length = 0;
  if (!parse_content_length(content_length, length)) {
    out.error = {400, "malformed CONTENT_LENGTH"};
  } else if (length > limits.max_body_bytes) {
    out.error = {413, "request body too large"};
  } else {
    out.length = length;
  }
  return out;
}

CgiReply answer(const HandlerInfo& info, Context& ctx, MetaVars meta, std::string body, EarlyError early) {
  Request req(std::move(meta), std::move(body), info.limits);
  CgiReply reply;
  reply.response = early.status != 0 ? ctx.error(early.status, early.message) : run_handler(info, req, ctx);
  reply.head = cgi_response_head(reply.response);
  reply.is_body_sent = response_has_body(reply.response, req.method());
  return reply;
}

int read_body(int fd, size_t length, std::string& out) {
  out.resize(length);
  size_t got = 0;
  while (got < length) {
    ssize_t n = sys::read(fd, out.data() + got, length - got);
    if (n < 0) return 500;
    if (n == 0) return 400;
    got += static_cast<size_t>(n);
  }
  return 0;
}

Context::DbConfig db_config_from(const MetaVars& meta) {
  auto lookup = [&](const char* name) -> std::string {
    for (const auto& [n, v] : meta)
      if (n == name) return v;
    const char* env = std::getenv(name);
    return env != nullptr ? std::string(env) : std::string();
  };
  return Context::DbConfig{lookup("SPAWND_DB"), lookup("SPAWND_PRAGMAS"), lookup("SPAWND_WAL_MAX_BYTES")};
}

std::string handler_name(const HandlerInfo& info, const char* argv0) {
  if (info.name != nullptr && info.name[0] != '\0') return info.name;
  if (argv0 == nullptr || argv0[0] == '\0') return "handler";
  const char* slash = std::strrchr(argv0, '/');
  return slash != nullptr ? std::string(slash + 1) : std::string(argv0);
}

}  // namespace spawnd::sdk
