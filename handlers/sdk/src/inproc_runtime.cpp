// inproc_runtime.cpp — the in-process runtime: the C ABI of spawnd/inproc_abi.h on top of the handler's registration.
//
// Linked only into a handler's shared object (spawnd_sdk_inproc), never into its executable. A context is one
// sdk::Context (its database connection, opened on first use, and that connection's prepared-statement cache) and
// lives as long as spawnd's worker thread keeps it; each request builds a Request from the meta-variable list and the
// body, runs run_handler() (which maps every exception to a response) and writes cgi_response_head() + body, exactly
// what the CGI runtime writes on stdout. Nothing here may let an exception out: the boundary is C.
#include <spawnd/inproc_abi.h>
#include <spawnd/runtime.h>

#include <new>
#include <string>
#include <string_view>

namespace spawnd::sdk {

namespace {

std::string_view view(const char* data, size_t size) noexcept {
  return size == 0 ? std::string_view() : std::string_view(data, size);
}

// SPAWND_DB, SPAWND_PRAGMAS and SPAWND_WAL_MAX_BYTES from the server's base variables only: unlike db_config_from(), never from spawnd's
// own environment, which a CGI child would not have seen either.
Context::DbConfig db_config_of(const spawnd_inproc_var* base, size_t count) {
  Context::DbConfig config;
  for (size_t i = 0; i < count; ++i) {
    std::string_view name = view(base[i].name, base[i].name_size);
    if (name == "SPAWND_DB") config.path = view(base[i].value, base[i].value_size);
    if (name == "SPAWND_PRAGMAS") config.pragmas = view(base[i].value, base[i].value_size);
    if (name == "SPAWND_WAL_MAX_BYTES") config.wal_max_bytes = view(base[i].value, base[i].value_size);
  }
  return config;
}

void* context_new(const spawnd_inproc_var* base, size_t base_count) noexcept {
  const HandlerInfo& info = detail::registered_handler;
  try {
    return new Context(info, handler_name(info, nullptr), db_config_of(base, base_count));
  } catch (...) {
    return nullptr;
  }
}

void context_free(void* context) noexcept { delete static_cast<Context*>(context); }

int handle(void* context, const spawnd_inproc_request* request, spawnd_inproc_write_fn write,
           void* write_arg) noexcept {
  const HandlerInfo& info = detail::registered_handler;
  Context& ctx = *static_cast<Context*>(context);
  try {
    MetaVars meta;
    meta.reserve(request->meta_count);
    for (size_t i = 0; i < request->meta_count; ++i) {
      const spawnd_inproc_var& v = request->meta[i];
      meta.emplace_back(view(v.name, v.name_size), view(v.value, v.value_size));
    }
    // The same checks as the CGI runtime, in the same order, so both answer a bad request alike.
    BodyExpectation expected = expect_body(meta, info.limits);
    if (expected.error.status == 0 && request->body_size < expected.length)
      expected.error = {400, kShortBodyMessage};
    // Exactly CONTENT_LENGTH bytes, as the CGI runtime reads from stdin (RFC 3875 §4.2).
    std::string body(expected.error.status == 0 ? view(request->body, expected.length) : std::string_view());
    CgiReply reply = answer(info, ctx, std::move(meta), std::move(body), expected.error);
    if (write(write_arg, reply.head.data(), reply.head.size()) != 0) return 1;
    if (!reply.body().empty() && write(write_arg, reply.body().data(), reply.body().size()) != 0) return 1;
    return 0;
  } catch (...) {
    // Only allocation can fail here: run_handler() itself never throws.
    return 1;
  }
}

}  // namespace

}  // namespace spawnd::sdk

// The one exported symbol (the shared object's version script hides everything else).
extern "C" __attribute__((visibility("default"))) const spawnd_inproc_handler* spawnd_inproc_handler_v1(void) {
  // A function-local static: the name comes from the registration in another translation unit.
  static const spawnd_inproc_handler descriptor{
      .abi_version = SPAWND_INPROC_ABI_VERSION,
      .name = spawnd::sdk::detail::registered_handler.name != nullptr ? spawnd::sdk::detail::registered_handler.name
                                                                     : "handler",
      .context_new = &spawnd::sdk::context_new,
      .context_free = &spawnd::sdk::context_free,
      .handle = &spawnd::sdk::handle,
  };
  return &descriptor;
}
