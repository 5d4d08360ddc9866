/* spawnd/inproc_abi.h — the C ABI between spawnd (`--mode inproc`) and a handler built as a shared object.
 *
 * A handler shared object (cgi-bin/NAME.so, built by spawnd_add_handler from the same source as the executable)
 * exports exactly one symbol:
 *
 *     const spawnd_inproc_handler* spawnd_inproc_handler_v1(void);
 *
 * It returns a pointer to a static descriptor: the ABI version, the handler's name and three functions. Only C
 * types cross the boundary (no C++ objects, no exceptions, no allocations freed on the other side), so the server
 * and the shared object need not share a C++ standard library build or its ABI. The SDK implements this for every
 * handler (handlers/sdk/src/inproc_runtime.cpp); handler authors never include this header.
 *
 * Versioning: the number is in the symbol name AND in spawnd_inproc_handler::abi_version. An incompatible change
 * adds spawnd_inproc_handler_v2 and bumps SPAWND_INPROC_ABI_VERSION; spawnd refuses (at start-up, exit status 2) a
 * shared object without the symbol or whose descriptor says another version.
 *
 * The request is what a CGI program would get (RFC 3875): the meta-variables (§4.1) as name/value pairs, and the
 * complete message body (§4.2; exactly CONTENT_LENGTH bytes, already de-chunked). The response is what a CGI
 * program would print on stdout (§6): a header block ("Status: 200 OK", fields, an empty line) followed by the
 * body. spawnd parses it with the same parser as CGI output, so Status, Location and local redirects behave alike.
 *
 * Units: every size is in bytes. Strings are NOT NUL-terminated: each comes with its length (a value may contain
 * any byte but NUL in practice, as a CGI environment would).
 *
 * Threads: handle() is called from several threads at once, each with its own context; a context is used by one
 * thread at a time (spawnd keeps one per worker thread and handler, so the database connection and prepared-statement
 * cache inside it are never shared). context_new() and context_free() may be called from any thread. Anything
 * static in the handler is shared by all threads.
 *
 * Errors: no function may let a C++ exception (or a longjmp) escape. A handler's own failures are responses (a 500,
 * 503, 400, ... page written through `write`); a nonzero return from handle() means no valid response could be
 * produced at all (out of memory, or `write` failed), and spawnd answers 500. A crash (SIGSEGV, abort) inside a
 * handler takes the whole server down: in-process mode trades the isolation of a process per request for speed.
 */
#ifndef SPAWND_INPROC_ABI_H
#define SPAWND_INPROC_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version this header describes; spawnd_inproc_handler::abi_version must equal it. */
#define SPAWND_INPROC_ABI_VERSION 1u
/* The name of the one exported symbol, for dlsym(). */
#define SPAWND_INPROC_ENTRY_SYMBOL "spawnd_inproc_handler_v1"

/* One name/value pair, e.g. {"REQUEST_METHOD", 14, "GET", 3}. Borrowed: valid only during the call it is passed to. */
typedef struct spawnd_inproc_var {
  const char* name;
  size_t name_size;
  const char* value;
  size_t value_size;
} spawnd_inproc_var;

/* One request. Everything is borrowed from spawnd and valid only until handle() returns. */
typedef struct spawnd_inproc_request {
  const spawnd_inproc_var* meta; /* the meta-variables, including the server's base variables (SPAWND_DB, ...) */
  size_t meta_count;
  const char* body; /* the message body; may be NULL when body_size is 0 */
  size_t body_size;
} spawnd_inproc_request;

/* Appends `size` bytes at `data` to the response. Returns 0 on success, nonzero if they could not be taken (the
 * handler then stops and handle() returns nonzero). Implemented by spawnd; `arg` is its opaque pointer. */
typedef int (*spawnd_inproc_write_fn)(void* arg, const void* data, size_t size);

typedef struct spawnd_inproc_handler {
  /* SPAWND_INPROC_ABI_VERSION of the header the shared object was built with. The first member in every version:
   * spawnd reads it before it trusts anything else in the descriptor. */
  uint32_t abi_version;
  /* The handler's name as it appears in log lines ("handler NAME: ..."); a static NUL-terminated string. */
  const char* name;

  /* Creates the per-thread state (the SDK's Context: database connection, statement cache). `base`/`base_count`
   * are the variables every request of this server carries (the same the CGI mode puts in every child's
   * environment: SPAWND_DB, SPAWND_PRAGMAS, PATH, ...); they are copied. Opens nothing yet: the database is opened
   * on first use. Returns NULL on failure (out of memory); spawnd answers the request 500. */
  void* (*context_new)(const spawnd_inproc_var* base, size_t base_count);
  /* Destroys a context made by context_new() (closes its database connection). Never fails. NULL is a no-op. */
  void (*context_free)(void* context);
  /* Answers one request: writes the whole CGI response (header block, then body) through `write` and returns 0,
   * whatever the HTTP status. Nonzero: nothing usable was written (see Errors above). Blocks for as long as the
   * handler runs (database waits included): spawnd calls it on worker threads, never on its event loop. */
  int (*handle)(void* context, const spawnd_inproc_request* request, spawnd_inproc_write_fn write, void* write_arg);
} spawnd_inproc_handler;

/* The entry point: the descriptor, a static that lives as long as the shared object is loaded. Never NULL. */
typedef const spawnd_inproc_handler* (*spawnd_inproc_entry_fn)(void);
const spawnd_inproc_handler* spawnd_inproc_handler_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* SPAWND_INPROC_ABI_H */
