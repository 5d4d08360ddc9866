#include "server/gateway/cgi_gateway.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/uri.h"
#include "common/error.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/sys.h"
#include "server/gateway/admission.h"
#include "server/gateway/cgi_relay.h"
#include "server/gateway/script_request.h"

namespace spawnd::server {

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxReadsPerEvent = 4;
constexpr int kMaxStderrDrainReads = 128;  // 1 MiB of stderr read when an exchange ends

// A pipe between us and a child: our end non-blocking (for the loop), the child's end blocking (CGI programs expect
// ordinary stdio), both close-on-exec (the child gets its end through dup2 onto 0/1/2).
bool make_pipe(Fd& ours, Fd& childs, bool is_ours_read_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  ours.reset(fds[is_ours_read_end ? 0 : 1]);
  childs.reset(fds[is_ours_read_end ? 1 : 0]);
  // F_SETFL changes only the status flags, so there is no need to read them first.
  return ::fcntl(ours.get(), F_SETFL, O_NONBLOCK) == 0;
}

}  // namespace

// One request being answered by one child process.
class CgiExchange final : public Exchange, public Admission::Waiter {
 public:
  CgiExchange(CgiGateway& gw, const Request& request, ResponseSink& sink, RequestBody& body, ScriptTarget target)
      : gw_(gw),
        loop_(gw.loop_),
        sink_(sink),
        body_(body),
        request_(request),
        request_id_(request.id),
        target_(std::move(target)),
        script_(target_.name),
        relay_(sink, gw.config_.max_header_bytes, request.is_head(), script_.rfind("nph-", 0) == 0) {}

  ~CgiExchange() override {
    gw_.forget(*this);
    if (timer_) loop_.cancel(timer_);
    read_stderr(kMaxStderrDrainReads);  // what the child wrote before it ended, still in the pipe
    if (child_id_ && !has_exited_ && is_clean_end_) {
      // Answered, but still running: allow it until its timeout, then stop it.
      std::int64_t left = deadline_ms_ - loop_.now_ms();
      gw_.children_.terminate_group_after(child_id_, left > 0 ? left : 0);
    } else if (!is_clean_end_) {
      stop_group();  // cancelled (client gone, timeout, error): the table still reaps the child
    }
  }

  void arm_timeout() {
    deadline_ms_ = loop_.now_ms() + gw_.config_.timeout_ms;
    timer_ = loop_.add_timer(gw_.config_.timeout_ms, [this] {
      timer_ = 0;
      on_timeout();
    });
  }

  // Prepares the child's pipes and environment and hands the spawn to the pool; on_spawned() follows. Returns
  // false, with errno set, if the preparation failed (no child exists then).
  bool prepare_spawn(std::uint64_t token) {
    const CgiConfig& cfg = gw_.config_;
    // Without a body the child reads /dev/null: one pipe and two epoll_ctl calls fewer per request.
    const bool has_body = request_.has_body || request_.content_length.value_or(0) > 0;
    SpawnPool::Job job;
    job.token = token;
    if ((has_body && !make_pipe(stdin_.fd, job.child_stdin, false)) ||
        !make_pipe(stdout_.fd, job.child_stdout, true) || !make_pipe(stderr_.fd, job.child_stderr, true))
      return false;
    has_pipes_ = true;

    SpawnSpec& spec = job.spec;
    spec.path = target_.script_filename;
    spec.argv.push_back(target_.script_filename);
    if (cfg.argv_from_query && !request_.query.empty() && request_.query.find('=') == std::string::npos) {
      // RFC 3875 §4.4: a search-string query becomes argv words ('+'-separated, percent-decoded).
      std::string_view q = request_.query;
      while (!q.empty()) {
        auto plus = q.find('+');
        std::string word;
        if (percent_decode(q.substr(0, plus), word)) spec.argv.push_back(word);
        q = plus == std::string_view::npos ? std::string_view() : q.substr(plus + 1);
      }
    }
    spec.envp = cfg.base_env;
    const ScriptServerInfo server{.document_root = cfg.document_root, .pass_authorization = cfg.pass_authorization};
    for (auto& [name, value] : script_meta_variables(request_, target_, server))
      spec.envp.push_back(name + "=" + value);
    // The script's own directory (RFC 3875 §7.2 leaves it to the server; Apache's choice): `directory` for a
    // --cgi-bin program, the file's directory under the root for one run by extension (--cgi-ext).
    spec.cwd = target_.script_filename.substr(0, target_.script_filename.rfind('/'));
    spec.stdin_fd = has_body ? job.child_stdin.get() : gw_.dev_null_.get();
    spec.stdout_fd = job.child_stdout.get();
    spec.stderr_fd = job.child_stderr.get();
    spec.method = cfg.spawn_method;

    // Register our ends before the child exists, so that a failure here leaves no child behind.
    stdout_.watch = loop_.watch(stdout_.get(), EPOLLIN, [this](std::uint32_t) { on_stdout(); });
    if (!stdout_.watch) return false;
    stderr_.watch = loop_.watch(stderr_.get(), EPOLLIN, [this](std::uint32_t) { on_stderr(); });
    if (!stderr_.watch) return false;
    if (has_body) {
      stdin_.watch = loop_.watch(stdin_.get(), 0, [this](std::uint32_t) { write_body(); });
      if (!stdin_.watch) return false;
    }
    gw_.spawn_job(script_, std::move(job));
    // The body may start flowing into the pipe already; the child finds it there.
    write_body();
    return true;
  }

  // The child started: `id` in the gateway's child table.
  void on_spawned(ChildTable::ChildId id, pid_t pid) {
    child_id_ = id;
    pid_ = pid;
  }

  [[nodiscard]] ChildTable::ChildId child_id() const noexcept { return child_id_; }
  [[nodiscard]] const std::string& script() const noexcept { return script_; }
  [[nodiscard]] std::uint64_t request_id() const noexcept { return request_id_; }
  // The response ended already (a start that failed answered it).
  [[nodiscard]] bool is_finished() const noexcept { return is_finished_; }
  std::uint64_t spawn_token = 0;  // the pool's job for this exchange, while it may be in flight

  // The child was reaped while its request is still ours.
  void on_child_exit(int status) {
    has_exited_ = true;
    exit_status_ = status;
    bool is_clean = status == ChildTable::kUnknownStatus || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!is_clean && !is_timed_out_) {
      SPAWND_LOG_WARN("cgi[%llu] %s: child %d ended with %s", ull(request_id_), script_.c_str(), static_cast<int>(pid_),
                      describe_exit(status).c_str());
    }
    // Stdout may still hold the last bytes; EOF on it ends the response, not the exit itself.
  }

  // Ends the exchange without a child: spawning failed (500, or 503 for EAGAIN/ENOMEM), or a queued request
  // waited too long for a slot (503: it never reached a handler).
  void fail_without_child(GatewayError error) {
    is_finished_ = true;
    sink_.on_end(error);
  }

  void resume() override {
    if (is_stdout_paused_ && stdout_) {
      is_stdout_paused_ = false;
      if (rearm(stdout_, EPOLLIN)) on_stdout();
    }
  }

  void on_request_body() override { write_body(); }

 private:
  static unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

  // Changes what the loop watches one of our pipe ends for. If epoll_ctl fails (ENOMEM) the pipe can no longer be
  // served: the exchange ends with 500 (or an aborted response), logged. Returns false then.
  bool rearm(EventLoop::WatchedFd& pipe, std::uint32_t events) {
    if (pipe.watch.modify(events)) return true;
    SPAWND_LOG_ERROR("cgi[%llu] %s: epoll_ctl on a pipe to child %d: %s", ull(request_id_), script_.c_str(),
                     static_cast<int>(pid_), std::strerror(errno));
    finish(GatewayError::Internal);
    return false;
  }

  void write_body() {
    // Queued for a child slot: the body stays with the connection (which stops reading at its high-water mark).
    if (!has_pipes_) return;
    if (!stdin_) {
      // The child closed its stdin (or we did, or it reads /dev/null): whatever else arrives is dropped.
      std::size_t n = body_.available().size();
      if (n) body_.consume(n);
      return;
    }
    for (;;) {
      std::string_view avail = body_.available();
      if (avail.empty()) break;
      ssize_t n = sys::write(stdin_.get(), avail.data(), avail.size());
      if (n > 0) {
        body_.consume(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        (void)rearm(stdin_, EPOLLOUT);  // resume when the pipe drains
        return;
      }
      // EPIPE: the script does not read its input. That is its right (RFC 3875 §4.2); drop the rest.
      stdin_.close();
      write_body();
      return;
    }
    if (body_.is_complete()) {
      stdin_.close();  // EOF on the child's stdin: the body is complete
    } else {
      (void)rearm(stdin_, 0);
    }
  }

  void on_stdout() {
    char buf[kReadChunkBytes];
    for (int i = 0; i < kMaxReadsPerEvent && stdout_ && !is_stdout_paused_ && !is_finished_; ++i) {
      ssize_t n = sys::read(stdout_.get(), buf, sizeof buf);
      if (n > 0) {
        if (!on_relayed(relay_.feed(std::string_view(buf, static_cast<std::size_t>(n))))) return;
        continue;
      }
      if (n < 0 && errno == EAGAIN) return;
      stdout_.close();  // EOF (or a read error): the output is over
      on_relayed(relay_.end());
      return;
    }
  }

  // Acts on what the relay did with the child's output. Returns false once the exchange has ended (the caller must
  // not touch it further).
  bool on_relayed(CgiOutputRelay::Step step) {
    switch (step) {
      case CgiOutputRelay::Step::More: return true;
      case CgiOutputRelay::Step::Paused:
        is_stdout_paused_ = true;
        return rearm(stdout_, 0);
      case CgiOutputRelay::Step::Complete:
        if (relay_.is_redirected()) {
          // The connection serves the redirect's target; the child is left to finish (is_clean_end_).
          is_finished_ = true;
          is_clean_end_ = true;
          stdout_.close();
        } else {
          finish(std::nullopt);
        }
        return false;
      case CgiOutputRelay::Step::BadGateway:
        SPAWND_LOG_ERROR("cgi[%llu] %s: %s%s", ull(request_id_), script_.c_str(), relay_.error().c_str(),
                         has_exited_ && !relay_.has_head() ? (" (" + describe_exit(exit_status_) + ")").c_str() : "");
        finish(GatewayError::BadGateway);
        return false;
      case CgiOutputRelay::Step::SinkClosed: return false;  // the connection is closing; it destroys us later
    }
    return false;
  }

  void on_stderr() { read_stderr(kMaxReadsPerEvent); }

  // Reads up to `max_reads` chunks of the child's stderr and logs them line by line.
  void read_stderr(int max_reads) {
    char buf[8192];
    auto log_line = [this](std::string_view line) {
      SPAWND_LOG_WARN("cgi[%llu] %s: %.*s", ull(request_id_), script_.c_str(), static_cast<int>(line.size()),
                      line.data());
    };
    for (int i = 0; i < max_reads && stderr_; ++i) {
      ssize_t n = sys::read(stderr_.get(), buf, sizeof buf);
      if (n > 0) {
        stderr_lines_.append(std::string_view(buf, static_cast<std::size_t>(n)), log_line);
        continue;
      }
      if (n < 0 && errno == EAGAIN) return;
      stderr_lines_.flush(log_line);
      stderr_.close();
      return;
    }
  }

  // Stops the child's process group: SIGTERM, then SIGKILL (the child table's escalation). If the leader has
  // exited already but members of its group still hold its stdout (a script's background job), the group id is
  // still theirs and cannot have been reused, so they get SIGKILL directly.
  void stop_group() {
    if (!child_id_) return;
    if (!has_exited_) {
      gw_.children_.terminate_group(child_id_);
    } else if (stdout_) {
      ::kill(-pid_, SIGKILL);
    }
  }

  void on_timeout() {
    is_timed_out_ = true;
    if (gw_.admission_.expire(*this, gw_.config_.timeout_ms)) {
      fail_without_child(GatewayError::ServiceUnavailable);
      return;
    }
    SPAWND_LOG_ERROR("cgi[%llu] %s: no complete response within %lld ms: terminating child %d", ull(request_id_),
                     script_.c_str(), static_cast<long long>(gw_.config_.timeout_ms), static_cast<int>(pid_));
    finish(GatewayError::GatewayTimeout);
  }

  // Ends the response: nullopt when it is complete, else the error for the connection to report.
  void finish(std::optional<GatewayError> error) {
    if (is_finished_) return;
    is_finished_ = true;
    is_clean_end_ = !error.has_value();
    if (error) stop_group();
    stdout_.close();
    sink_.on_end(error);
  }

  CgiGateway& gw_;
  EventLoop& loop_;
  ResponseSink& sink_;
  RequestBody& body_;
  const Request& request_;
  std::uint64_t request_id_;
  ScriptTarget target_;
  const std::string& script_;  // target_.name, for log lines
  CgiOutputRelay relay_;

  // Our ends of the child's pipes; each leaves the loop and closes with its WatchedFd (also on destruction).
  EventLoop::WatchedFd stdin_, stdout_, stderr_;
  ChildTable::ChildId child_id_ = 0;  // 0: no child known (not started, or its fork server never reported it)
  pid_t pid_ = -1;                    // for log lines, and the group of a leader that has exited (stop_group)
  EventLoop::TimerId timer_ = 0;
  std::int64_t deadline_ms_ = 0;
  StderrLines stderr_lines_;
  int exit_status_ = 0;
  bool has_exited_ = false;
  bool has_pipes_ = false;  // spawn() created the pipes (false while queued for a slot)
  bool is_stdout_paused_ = false;
  bool is_finished_ = false;
  bool is_clean_end_ = false;
  bool is_timed_out_ = false;
};

CgiGateway::CgiGateway(EventLoop& loop, ChildTable& children, CgiConfig config)
    : loop_(loop),
      config_(std::move(config)),
      children_(children),
      dev_null_(::open("/dev/null", O_RDWR | O_CLOEXEC)),
      admission_("cgi", "child slot", config_.max_queue,
                 [this](Admission::Waiter& waiter) {
                   if (running_ >= config_.max_children) return false;
                   spawn(static_cast<CgiExchange&>(waiter));
                   return true;
                 }),
      spawner_(loop, config_.spawn_threads,
               [this](std::uint64_t token, Result<ChildProcess> child) { on_spawned(token, std::move(child)); }) {
  if (!dev_null_) throw Error(errno, "open /dev/null");
  if (config_.fork_servers > 0) {
    fork_servers_ = std::make_unique<ForkServers>(
        loop_, children_, config_.directory, config_.base_env, config_.fork_servers, config_.prefork,
        dev_null_.get(),
        [this](std::uint64_t token, Result<ChildProcess> child) { on_spawned(token, std::move(child)); });
  }
}

// Spawns still in flight must land in the child table (to be killed and reaped) while it exists.
CgiGateway::~CgiGateway() {
  spawner_.stop_and_deliver();
  fork_servers_.reset();
}

void CgiGateway::spawn_job(const std::string& script, SpawnPool::Job job) {
  if (fork_servers_ && fork_servers_->spawn(script, job)) return;  // the job's Fds close here: passed on
  spawner_.spawn(std::move(job));
}

std::unique_ptr<Exchange> CgiGateway::start(const Request& request, ResponseSink& sink, RequestBody& body) {
  Result<ScriptTarget> mapped = map_script(request.path, config_.prefix, config_.directory, ScriptCheck::Executable);
  if (!mapped) {
    answer_script_error(sink, mapped.error());
    return nullptr;
  }
  auto ex = std::make_unique<CgiExchange>(*this, request, sink, body, std::move(mapped).value());
  ex->arm_timeout();
  switch (admission_.admit(*ex, request.id, ex->script())) {
    case Admission::Outcome::Started:
      if (ex->is_finished()) return nullptr;  // the spawn failed, and the request has its answer
      return ex;
    case Admission::Outcome::Queued: return ex;
    case Admission::Outcome::Refused: break;
  }
  sink.on_end(GatewayError::ServiceUnavailable);
  return nullptr;
}

ServedBy CgiGateway::served_by() const noexcept { return fork_servers_ ? ServedBy::Fork : ServedBy::Cgi; }

void CgiGateway::report_load(const LoadReport& report) const {
  report(served_by(), GatewayLoad{.running = running_,
                                  .queued = admission_.queued(),
                                  .queue_full = admission_.refused(),
                                  .queue_timeout = admission_.expired(),
                                  .spawn_failures = spawn_failures_ +
                                                    (fork_servers_ ? fork_servers_->start_failures() : 0)});
}

void CgiGateway::spawn(CgiExchange& ex) {
  // The slot is taken from now until the child is reaped (or the spawn fails).
  ++running_;
  std::uint64_t token = ++next_spawn_token_;
  ex.spawn_token = token;
  spawning_[token] = &ex;
  if (!ex.prepare_spawn(token)) {
    int err = errno;
    spawning_.erase(token);
    --running_;
    ++spawn_failures_;
    SPAWND_LOG_ERROR("cgi[%llu] %s: cannot start: %s", static_cast<unsigned long long>(ex.request_id()),
                     ex.script().c_str(), std::strerror(err));
    ex.fail_without_child(GatewayError::Internal);
  }
}

void CgiGateway::on_spawned(std::uint64_t token, Result<ChildProcess> spawned) {
  CgiExchange* ex = nullptr;
  if (auto it = spawning_.find(token); it != spawning_.end()) {
    ex = it->second;
    spawning_.erase(it);
  }
  if (!spawned) {
    int err = spawned.error().value();
    if (ex && err == ECONNRESET) {
      // Its fork server died or was retired before it reported a child we can watch: it may never have forked one,
      // or the child may be running, even be answering already (its output comes through the pipes, not through the
      // fork server). So the pipes decide, as for any child: a response if it gives one; if no child exists, its stdout
      // closes empty once the fork server is gone, and that is a 502. Failing the exchange here would cut off a
      // response that is on its way, and spawning it again could run a POST twice. (Without the child, a timeout
      // cannot signal its group: it lives on, re-parented to init.)
      SPAWND_LOG_WARN("cgi[%llu] %s: the fork server reported no child we can watch; its output decides",
                      static_cast<unsigned long long>(ex->request_id()), ex->script().c_str());
      free_slot();
      return;
    }
    ++spawn_failures_;
    if (ex) {
      // ENOENT/EACCES/ENOEXEC here mean the interpreter of a script is missing or not executable.
      SPAWND_LOG_ERROR("cgi[%llu] %s: cannot start: %s", static_cast<unsigned long long>(ex->request_id()),
                       ex->script().c_str(), std::strerror(err));
      ex->fail_without_child(err == EAGAIN || err == ENOMEM ? GatewayError::ServiceUnavailable
                                                            : GatewayError::Internal);
    }
    free_slot();
    return;
  }
  const pid_t pid = spawned->pid;
  // The child's slot is free when the table reaps it; its exchange, while it lasts, hears of the exit first
  // (forget() drops that part of the callback).
  ChildTable::ExitCallback on_exit = slot_release();
  if (ex) on_exit = [this, ex](int status) {
    ex->on_child_exit(status);
    free_slot();
  };
  auto id = children_.watch(std::move(*spawned), std::move(on_exit));
  if (!id) {
    // Logged by the table, which killed the child (or left a duplicate to the entry that has it).
    if (ex) ex->fail_without_child(GatewayError::Internal);
    free_slot();
    return;
  }
  if (!ex) {
    children_.terminate_group(*id);  // its request was cancelled while the spawn was in flight
    return;
  }
  ex->on_spawned(*id, pid);
}

void CgiGateway::forget(CgiExchange& ex) {
  (void)admission_.withdraw(ex);  // still queued: out now, before its destructor does anything else
  if (ex.spawn_token) spawning_.erase(ex.spawn_token);
  // Its child, if still running, frees only its slot when it is reaped.
  if (ex.child_id()) children_.set_exit_callback(ex.child_id(), slot_release());
}

ChildTable::ExitCallback CgiGateway::slot_release() {
  // The child may outlive the gateway: a reload retires the gateway once no request uses it, and a cancelled
  // request's child may still be on its way out then. The table reaps it all the same; no slot is left to free.
  return [this, alive = std::weak_ptr<const bool>(alive_)](int) {
    if (!alive.expired()) free_slot();
  };
}

void CgiGateway::free_slot() {
  --running_;
  admission_.slot_freed();
}

}  // namespace spawnd::server
