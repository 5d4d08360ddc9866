#include "server/gateway/inproc_gateway.h"

#include <dlfcn.h>
#include <pthread.h>

#include <spawnd/inproc_abi.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>

#include "common/error.h"
#include "common/log.h"
#include "common/sys.h"
#include "server/gateway/cgi_relay.h"
#include "server/gateway/script_request.h"

namespace spawnd::server {

namespace {

// Why a job came back without a response (Job::result).
constexpr int kNoContext = 1;   // context_new() failed
constexpr int kNoResponse = 2;  // handle() returned nonzero

// Places in the workers' queue: up to four jobs per worker wait there, handed over, so that a worker that finishes
// takes its next job at once instead of sleeping until the loop has seen the completion and admitted the next
// request (a futex wake-up and a loop round trip per request). Measured with spawnd-bench, c=16, 2 workers, against
// the pool before admission.h: without them 0.88x (read) and 0.68x (write) its rate, one per worker 0.95x and
// 0.89x, four per worker 1.04x and 1.04x. They are taken from --queue, so that no more requests wait than it allows
// (--queue 0: none).
std::size_t handover_places(const InProcConfig& config) { return std::min(config.workers * 4, config.cgi.max_queue); }

InProcConfig with_a_worker(InProcConfig config) {
  if (config.workers == 0) config.workers = 1;
  return config;
}

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

struct LoadedHandler {
  std::string name;  // "guestbook" for guestbook.so: the URL path segment
  const spawnd_inproc_handler* abi;
};

spawnd_inproc_var as_var(const std::pair<std::string, std::string>& nv) {
  return {nv.first.data(), nv.first.size(), nv.second.data(), nv.second.size()};
}

// spawnd_inproc_write_fn: the response accumulates in the job's std::string.
int append_output(void* arg, const void* data, std::size_t size) {
  try {
    static_cast<std::string*>(arg)->append(static_cast<const char*>(data), size);
    return 0;
  } catch (...) {
    return 1;  // std::bad_alloc or length_error: no exception may cross into the handler's frames
  }
}

}  // namespace

struct InProcGateway::Job {
  // Filled on the loop thread before hand(), then read by one worker.
  std::size_t handler = 0;
  std::vector<std::pair<std::string, std::string>> meta;
  std::string body;
  // Written by the worker; read by the loop once the job is on the completion list (the pool's mutex orders them).
  std::string output;
  int result = 0;  // 0: `output` holds the handler's CGI response; else kNoContext or kNoResponse
  // Queued → Called by the worker that takes it, or Queued → Cancelled by the loop when nobody wants the response
  // any more (client gone, timed out); a worker skips a cancelled job. Whoever changes it first wins.
  enum class State { Queued, Called, Cancelled };
  std::atomic<State> state{State::Queued};
  // Loop thread only.
  InProcExchange* exchange = nullptr;  // null once the exchange is gone or has given up on the job
  std::uint64_t request_id = 0;
  bool is_timed_out = false;
};

struct InProcGateway::Pool {
  std::vector<LoadedHandler> handlers;  // fixed before the first worker starts
  std::vector<std::pair<std::string, std::string>> base;  // CgiConfig::base_env, split, for context_new()
  std::vector<spawnd_inproc_var> base_vars;                // views of `base`
  std::size_t workers = 0;

  EventLoop* loop = nullptr;
  InProcGateway* gateway = nullptr;  // loop thread only; null once the gateway is gone (its posted completions drop)

  std::mutex mutex;
  std::condition_variable has_work;    // `queue` is not empty, or `is_stopping`
  std::condition_variable has_exited;  // `live` went down
  std::deque<std::shared_ptr<Job>> queue;  // admitted jobs (admission.h), for the next free worker
  std::size_t live = 0;  // worker threads that have not finished
  bool is_stopping = false;  // no completion is posted once it is set (the loop may be going away)

  // Runs `job` on the calling worker thread, with that worker's `contexts` (one per handler, made on first use).
  void call(Job& job, std::vector<void*>& contexts) {
    const LoadedHandler& h = handlers[job.handler];
    void*& context = contexts[job.handler];
    if (context == nullptr) context = h.abi->context_new(base_vars.data(), base_vars.size());
    if (context == nullptr) {
      job.result = kNoContext;
      return;
    }
    std::vector<spawnd_inproc_var> vars;
    vars.reserve(job.meta.size());
    for (const auto& nv : job.meta) vars.push_back(as_var(nv));
    spawnd_inproc_request request{vars.data(), vars.size(), job.body.data(), job.body.size()};
    job.output.reserve(16 * 1024);
    if (h.abi->handle(context, &request, &append_output, &job.output) != 0) job.result = kNoResponse;
  }

  // A worker thread's life. `self` keeps the pool alive for a worker left behind at shutdown.
  static void run_worker(std::shared_ptr<Pool> self) {
    Pool& pool = *self;
    std::vector<void*> contexts(pool.handlers.size(), nullptr);
    std::unique_lock lock(pool.mutex);
    for (;;) {
      pool.has_work.wait(lock, [&] { return pool.is_stopping || !pool.queue.empty(); });
      if (pool.is_stopping) break;
      std::shared_ptr<Job> job = std::move(pool.queue.front());
      pool.queue.pop_front();
      lock.unlock();
      if (Job::State queued = Job::State::Queued; job->state.compare_exchange_strong(queued, Job::State::Called))
        pool.call(*job, contexts);
      lock.lock();
      if (pool.is_stopping) break;
      // Under the pool's mutex, so that no completion is posted once stop_workers() has set is_stopping.
      pool.loop->post([self, job = std::move(job)] {
        if (self->gateway != nullptr) self->gateway->on_completion(*job);
      });
    }
    lock.unlock();
    // The worker's database connections close here, on the thread that used them.
    for (std::size_t i = 0; i < contexts.size(); ++i)
      if (contexts[i] != nullptr) pool.handlers[i].abi->context_free(contexts[i]);
    lock.lock();
    --pool.live;
    pool.has_exited.notify_all();
  }
};

// One request answered by a handler shared object.
class InProcExchange final : public Exchange, public Admission::Waiter {
 public:
  InProcExchange(InProcGateway& gw, const Request& request, ResponseSink& sink, RequestBody& body,
                 std::size_t handler, ScriptTarget target)
      : gw_(gw),
        loop_(gw.loop_),
        sink_(sink),
        body_(body),
        request_(request),
        target_(std::move(target)),
        job_(std::make_shared<InProcGateway::Job>()),
        is_head_(request.is_head()) {
    job_->handler = handler;
    job_->exchange = this;
    job_->request_id = request.id;
    // --handler-timeout counts from here, as in every mode: receiving the body, the queue and the call.
    timer_ = loop_.add_timer(gw_.config_.cgi.timeout_ms, [this] {
      timer_ = 0;
      on_timeout();
    });
  }

  ~InProcExchange() override {
    if (timer_) loop_.cancel(timer_);
    detach();
  }

  [[nodiscard]] bool is_finished() const noexcept { return is_finished_; }

  void resume() override {}  // the whole response went to the sink at once

  // Collects the body as it arrives (the handler needs all of it); asks for a worker once it is complete.
  void on_request_body() override {
    if (is_body_complete_ || is_finished_) return;
    std::string_view avail = body_.available();
    job_->body.append(avail);
    body_.consume(avail.size());
    if (!body_.is_complete()) return;
    is_body_complete_ = true;
    if (gw_.admission_.admit(*this, request_.id, target_.name) == Admission::Outcome::Refused)
      finish(GatewayError::ServiceUnavailable);
  }

  // A worker slot is ours (admission.h): the job goes to the workers.
  void run() {
    // The whole environment a CGI child would get: the base variables (PATH, --pass-env, SPAWND_DB, ...), then the
    // request's meta-variables.
    job_->meta = gw_.pool_->base;
    const ScriptServerInfo server{.document_root = gw_.config_.cgi.document_root,
                                  .pass_authorization = gw_.config_.cgi.pass_authorization};
    for (auto& var : script_meta_variables(request_, target_, server)) job_->meta.push_back(std::move(var));
    is_running_ = true;
    gw_.hand(job_);
  }

  // The worker finished our job (loop thread, from InProcGateway::on_completion()).
  void on_complete(const InProcGateway::Job& job) {
    if (timer_) loop_.cancel(timer_);
    timer_ = 0;
    job_->exchange = nullptr;
    job_.reset();  // done with it; `job` stays valid, the completion list holds it
    const char* name = script();
    if (job.result != 0) {
      SPAWND_LOG_ERROR("inproc[%llu] %s: %s", ull(request_.id), name,
                       job.result == kNoContext ? "the handler could not create its context"
                                                : "the handler produced no response (out of memory?)");
      finish(GatewayError::Internal);
      return;
    }
    CgiOutputRelay relay(sink_, gw_.config_.cgi.max_header_bytes, is_head_);
    switch (relay.relay_whole(job.output)) {
      case CgiOutputRelay::Step::Complete:
        if (relay.is_redirected()) {
          is_finished_ = true;  // the connection serves the redirect's target
          return;
        }
        finish(std::nullopt);
        return;
      case CgiOutputRelay::Step::BadGateway:
        SPAWND_LOG_ERROR("inproc[%llu] %s: %s", ull(request_.id), name, relay.error().c_str());
        finish(GatewayError::BadGateway);
        return;
      default:
        is_finished_ = true;  // SinkClosed: the connection is closing; it destroys us later
        return;
    }
  }

 private:
  [[nodiscard]] const char* script() const noexcept { return target_.name.c_str(); }

  void on_timeout() {
    const long long ms = static_cast<long long>(gw_.config_.cgi.timeout_ms);
    if (gw_.admission_.expire(*this, ms)) {
      finish(GatewayError::ServiceUnavailable);
      return;
    }
    if (is_running_ && cancel_if_queued()) {
      // Handed over but still in the workers' queue: it never reached a handler, as if it had expired in admission.
      gw_.admission_.log_expired(request_.id, target_.name, ms);
      finish(GatewayError::ServiceUnavailable);
      return;
    }
    if (!is_running_) {
      SPAWND_LOG_ERROR("inproc[%llu] %s: the request body was not complete within %lld ms: 504", ull(request_.id),
                       script(), ms);
    } else {
      // The thread cannot be stopped: it stays busy until the handler returns, and that late response is dropped.
      SPAWND_LOG_ERROR("inproc[%llu] %s: no response within %lld ms: 504 (its worker stays busy until the handler "
                       "returns)",
                       ull(request_.id), script(), ms);
      job_->is_timed_out = true;
    }
    finish(GatewayError::GatewayTimeout);
  }

  // Gives up the job: a worker that has it finishes it for nobody; one that has not started it skips the call; a
  // request still waiting for admission leaves the queue.
  void detach() {
    (void)gw_.admission_.withdraw(*this);
    if (!job_) return;
    job_->exchange = nullptr;
    (void)cancel_if_queued();
    job_.reset();
  }

  // True if no worker had taken the job yet: none will call its handler now.
  bool cancel_if_queued() noexcept {
    InProcGateway::Job::State queued = InProcGateway::Job::State::Queued;
    return job_ && job_->state.compare_exchange_strong(queued, InProcGateway::Job::State::Cancelled);
  }

  void finish(std::optional<GatewayError> error) {
    is_finished_ = true;
    detach();
    sink_.on_end(error);
  }

  InProcGateway& gw_;
  EventLoop& loop_;
  ResponseSink& sink_;
  RequestBody& body_;
  const Request& request_;
  ScriptTarget target_;
  std::shared_ptr<InProcGateway::Job> job_;  // ours until it completes or we give it up
  EventLoop::TimerId timer_ = 0;
  bool is_head_;
  bool is_body_complete_ = false;
  bool is_running_ = false;  // handed to the workers
  bool is_finished_ = false;
};

InProcGateway::InProcGateway(EventLoop& loop, InProcConfig config, std::unique_ptr<Gateway> fallback)
    : loop_(loop),
      config_(with_a_worker(std::move(config))),
      fallback_(std::move(fallback)),
      max_busy_(config_.workers + handover_places(config_)),
      admission_("inproc", "worker", config_.cgi.max_queue - handover_places(config_),
                 [this](Admission::Waiter& waiter) {
                   if (busy_ >= max_busy_) return false;
                   ++busy_;
                   static_cast<InProcExchange&>(waiter).run();
                   return true;
                 }),
      pool_(std::make_shared<Pool>()) {
  load_handlers();
  pool_->workers = config_.workers;
  for (const std::string& entry : config_.cgi.base_env) {
    // "NAME=value" → (NAME, value)
    const auto eq = entry.find('=');
    pool_->base.emplace_back(entry.substr(0, eq), eq == std::string::npos ? std::string() : entry.substr(eq + 1));
  }
  for (const auto& nv : pool_->base) pool_->base_vars.push_back(as_var(nv));
  pool_->loop = &loop_;
  pool_->gateway = this;
  try {
    start_workers();
  } catch (...) {
    pool_->gateway = nullptr;
    stop_workers();
    throw;
  }
}

InProcGateway::~InProcGateway() {
  pool_->gateway = nullptr;  // completions posted but not run yet find no gateway
  stop_workers();
}

void InProcGateway::load_handlers() {
  namespace fs = std::filesystem;
  const std::string& dir = config_.cgi.directory;
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string file = it->path().filename().string();
    if (file.size() <= 3 || file[0] == '.' || !file.ends_with(".so")) continue;
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) files.push_back(it->path());
  }
  if (ec) throw Error(ec.value(), "--cgi-bin " + dir);
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    const std::string path = file.string();
    // RTLD_NOW: a missing symbol fails here, at start-up, not in the middle of a request. RTLD_LOCAL: nothing of
    // it becomes visible to the next one (its version script exports only the entry point anyway).
    void* dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) throw ConfigError(path + ": cannot load the handler shared object: " + ::dlerror());
    void* sym = ::dlsym(dl, SPAWND_INPROC_ENTRY_SYMBOL);
    if (sym == nullptr)
      throw ConfigError(path + ": not a spawnd in-process handler (no " SPAWND_INPROC_ENTRY_SYMBOL
                               " symbol; build it with spawnd_add_handler)");
    auto entry = reinterpret_cast<spawnd_inproc_entry_fn>(sym);
    const spawnd_inproc_handler* abi = entry();
    if (abi == nullptr) throw ConfigError(path + ": " SPAWND_INPROC_ENTRY_SYMBOL "() returned no descriptor");
    if (abi->abi_version != SPAWND_INPROC_ABI_VERSION)
      throw ConfigError(path + ": in-process ABI version " + std::to_string(abi->abi_version) +
                        ", but this spawnd speaks version " + std::to_string(SPAWND_INPROC_ABI_VERSION) +
                        ": rebuild the handler against this SDK");
    if (abi->context_new == nullptr || abi->context_free == nullptr || abi->handle == nullptr)
      throw ConfigError(path + ": the handler descriptor lacks a function");
    std::string name = file.stem().string();
    handlers_.emplace(name, pool_->handlers.size());
    pool_->handlers.push_back(LoadedHandler{std::move(name), abi});
    // The handle is deliberately never closed (see the header).
  }
}

void InProcGateway::start_workers() {
  for (std::size_t i = 0; i < config_.workers; ++i) {
    {
      std::lock_guard lock(pool_->mutex);
      ++pool_->live;
    }
    try {
      threads_.emplace_back(&Pool::run_worker, pool_);
    } catch (const std::system_error& e) {
      std::lock_guard lock(pool_->mutex);
      --pool_->live;
      throw Error(e.code().value(), "inproc: starting worker thread");
    }
    ::pthread_setname_np(threads_.back().native_handle(), "spawnd-inproc");
  }
}

void InProcGateway::stop_workers() noexcept {
  std::unique_lock lock(pool_->mutex);
  pool_->is_stopping = true;
  pool_->queue.clear();  // no exchange is left to want them
  pool_->has_work.notify_all();
  const bool is_done = pool_->has_exited.wait_for(lock, std::chrono::milliseconds(config_.cgi.kill_grace_ms),
                                                  [this] { return pool_->live == 0; });
  const std::size_t stuck = pool_->live;
  lock.unlock();
  if (!is_done) {
    SPAWND_LOG_WARN("inproc: %zu handler call(s) still running after %lld ms; leaving them behind (a thread "
                    "cannot be stopped)",
                    stuck, static_cast<long long>(config_.cgi.kill_grace_ms));
  }
  for (std::thread& t : threads_) {
    if (is_done) {
      t.join();
    } else {
      t.detach();  // each keeps the pool alive through its own shared_ptr
    }
  }
  threads_.clear();
}

void InProcGateway::report_load(const LoadReport& report) const {
  report(ServedBy::InProc, GatewayLoad{.running = busy_,
                                       .queued = admission_.queued(),
                                       .queue_full = admission_.refused(),
                                       .queue_timeout = admission_.expired()});
  if (fallback_) fallback_->report_load(report);
}

std::unique_ptr<Exchange> InProcGateway::start(const Request& request, ResponseSink& sink, RequestBody& body) {
  Result<ScriptTarget> mapped = map_script(request.path, config_.cgi.prefix, config_.cgi.directory, ScriptCheck::None);
  if (!mapped) {
    answer_script_error(sink, mapped.error());
    return nullptr;
  }
  ScriptTarget* target = &*mapped;
  auto it = handlers_.find(target->name);
  if (it == handlers_.end()) {
    if (fallback_) return fallback_->start(request, sink, body);
    answer_status(sink, 404);
    return nullptr;
  }
  auto ex = std::make_unique<InProcExchange>(*this, request, sink, body, it->second, std::move(*target));
  ex->on_request_body();  // takes what has arrived; queues the call at once if that is the whole body
  if (ex->is_finished()) return nullptr;
  return ex;
}

void InProcGateway::hand(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lock(pool_->mutex);
    pool_->queue.push_back(job);
  }
  pool_->has_work.notify_one();
}

void InProcGateway::on_completion(const Job& job) {
  --busy_;
  if (job.exchange != nullptr) {
    job.exchange->on_complete(job);
  } else if (job.is_timed_out && job.state.load() == Job::State::Called) {
    SPAWND_LOG_WARN("inproc[%llu] %s: the handler returned after its request got 504; response dropped",
                    ull(job.request_id), pool_->handlers[job.handler].name.c_str());
  }
  admission_.slot_freed();
}

}  // namespace spawnd::server
