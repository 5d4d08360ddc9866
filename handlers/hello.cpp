// hello — the smallest dynamic response: no database, no parsing. It measures what one request costs in process
// start-up alone (exec, libc start-up, the SDK's runtime, one writev), so keep it this small.
#include <spawnd/handler.h>

namespace {

spawnd::sdk::Response handle(spawnd::sdk::Request&, spawnd::sdk::Context&) {
  return spawnd::sdk::Response::text("Hello, world!\n");
}

}  // namespace

SPAWND_HANDLER(handle);
