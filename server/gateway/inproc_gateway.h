// server/gateway/inproc_gateway.h — runs handlers inside spawnd, as shared objects called on worker threads:
// `--mode inproc`.
//
// At start-up every "NAME.so" directly inside --cgi-bin is dlopen()ed and asked for its descriptor through the one
// entry point of spawnd/inproc_abi.h (spawnd_add_handler builds one beside each handler executable). A file that
// does not load, lacks the entry point or speaks another ABI version is a configuration error (ConfigError: spawnd
// exits 2). "/cgi-bin/NAME/extra" then calls NAME.so with the same meta-variables a CGI child would get
// (script_request.h) and the complete request body, and parses what it writes with CgiResponseParser, the CGI mode's parser,
// so Status, Location and local redirects behave exactly as in CGI mode. A name without a shared object (a script,
// any other CGI program, "NAME.so" itself) goes to the `fallback` gateway, plain CGI, as fork mode does.
//
// Threads. The event loop never runs handler code. A request whose body is complete is admitted (admission.h) to one
// of `workers` threads; the worker calls the handler and posts the finished job back to the loop (EventLoop::post),
// which relays the response (cgi_relay.h). Each worker owns one context per handler (the SDK's Context: its own
// SQLite connection, opened with the configured preset on first use, and its prepared-statement cache), made on first
// use and freed when the worker stops. Jobs are shared (shared_ptr) between the loop and the workers; the pointer from
// a job back to its exchange is touched on the loop thread only, and destroying an exchange (client gone, timeout)
// nulls it, so a late completion is dropped on arrival instead of reaching freed memory.
//
// Limits: a request waits in a FIFO while all workers are busy; beyond `max_queue` waiting requests the answer is
// 503 with Retry-After. A response not complete within `timeout_ms` from start() (receiving the body and the queue
// wait included, as in every mode) gets 504, or 503 if it never left the queue. What in-process mode cannot do, and CGI can: a thread cannot be killed, so a timed-out handler
// keeps its worker until it returns (the pool is one worker smaller meanwhile); and a handler that crashes (SIGSEGV,
// abort), leaks or corrupts memory does so inside spawnd, taking the whole server down. In-process trades the
// isolation of a process per request for speed.
//
// Shared objects are never dlclose()d: a worker stuck in a handler at shutdown may still be running its code.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/event_loop.h"
#include "server/gateway/admission.h"
#include "server/gateway/cgi_gateway.h"
#include "server/gateway/gateway.h"

namespace spawnd::server {

struct InProcConfig {
  // directory, prefix, document_root, base_env, pass_authorization (meta-variables as for CGI), timeout_ms,
  // max_queue, max_header_bytes (of the handler's CGI response) and kill_grace_ms (how long shutdown waits for
  // handler calls still running).
  CgiConfig cgi;
  std::size_t workers = 2;  // threads that call handlers
};

class InProcExchange;

class InProcGateway final : public Gateway {
 public:
  // Loads the shared objects and starts the workers. Throws ConfigError for a bad shared object, spawnd::Error if a
  // thread cannot be created. `fallback` (may be null: 404 instead) serves names without one.
  InProcGateway(EventLoop& loop, InProcConfig config, std::unique_ptr<Gateway> fallback);
  // Stops the workers: waits up to kill_grace_ms for calls still running, then leaves them (and their shared state)
  // behind. Call with no exchange left (the server drops its connections first).
  ~InProcGateway() override;

  [[nodiscard]] std::unique_ptr<Exchange> start(const Request& request, ResponseSink& sink,
                                                RequestBody& body) override;

  [[nodiscard]] ServedBy served_by() const noexcept override { return ServedBy::InProc; }
  // The workers' load (busy: jobs handed to them and not completed) and the fallback's.
  void report_load(const LoadReport& report) const override;

  // How many shared objects were loaded.
  [[nodiscard]] std::size_t handler_count() const noexcept { return handlers_.size(); }

  struct Pool;  // state shared with the worker threads (inproc_gateway.cpp)
  struct Job;   // one request on its way through a worker

 private:
  friend class InProcExchange;
  void load_handlers();
  void start_workers();
  // Asks the workers to stop and joins them; leaves behind (detached) those still in a handler after kill_grace_ms.
  void stop_workers() noexcept;
  // Gives an admitted job to the next free worker.
  void hand(const std::shared_ptr<Job>& job);
  // A worker finished `job` (loop thread, posted by the worker): its slot is free again.
  void on_completion(const Job& job);

  EventLoop& loop_;
  InProcConfig config_;
  std::unique_ptr<Gateway> fallback_;
  // Jobs handed to the workers and not yet completed (a timed-out one until its handler returns): at most
  // max_busy_, one per worker and the places of the workers' queue (handover_places, inproc_gateway.cpp).
  std::size_t busy_ = 0;
  std::size_t max_busy_;
  Admission admission_;
  std::unordered_map<std::string, std::size_t> handlers_;  // name → index into Pool::handlers
  std::shared_ptr<Pool> pool_;
  std::vector<std::thread> threads_;
};

}  // namespace spawnd::server
