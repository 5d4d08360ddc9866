#include "server/gateway/fastcgi_client.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include "common/net_addr.h"
#include "common/sys.h"
#include "server/gateway/fork_server.h"

namespace spawnd::server {

// ---- FastCgiApp ------------------------------------------------------------------------------------------------------

FastCgiApp::FastCgiApp(EventLoop& loop, const FastCgiConfig& config, FastCgiGateway* managed, std::size_t id,
                       std::string name, std::string program, const FastCgiAddress* address, std::size_t slots)
    : loop_(loop),
      config_(config),
      gw_(managed),
      id_(id),
      name_(std::move(name)),
      program_(std::move(program)),
      admission_("fastcgi", "connection", config.max_queue,
                 [this](Admission::Waiter& waiter) { return try_start(static_cast<FastCgiExchange&>(waiter)); }) {
  assert((gw_ != nullptr) == !program_.empty());
  if (!program_.empty()) supervisor_ = std::make_unique<Supervisor>(loop_, *gw_->children_, "fastcgi " + name_, program_);
  for (std::size_t i = 0; i < slots; ++i) {
    auto slot = std::make_unique<FastCgiSlot>();
    slot->index = i;
    if (address) {
      slot->address = *address;
      slot->is_available = true;
    }
    if (supervisor_) slot->worker = make_worker(*slot);
    slots_.push_back(std::move(slot));
  }
  for (auto& slot : slots_)
    if (slot->worker) slot->worker->start();
}

FastCgiApp::~FastCgiApp() {
  // Each slot's worker stops with it (SupervisedProcess's destructor).
  for (auto& slot : slots_) {
    if (slot->abort_timer) loop_.cancel(slot->abort_timer);
    if (slot->idle_timer) loop_.cancel(slot->idle_timer);
  }
}

GatewayLoad FastCgiApp::load() const {
  GatewayLoad load{.queued = admission_.queued(), .queue_full = admission_.refused(),
                   .queue_timeout = admission_.expired()};
  for (const auto& slot : slots_) {
    if (slot->ex != nullptr) ++load.running;
    if (slot->next != nullptr) ++load.queued;  // pipelined: sent, waiting behind the running one
  }
  if (supervisor_) load.spawn_failures = supervisor_->start_failures();
  return load;
}

bool FastCgiApp::admit(FastCgiExchange& ex) {
  return admission_.admit(ex, ex.request_id(), name_) != Admission::Outcome::Refused;
}

bool FastCgiApp::try_start(FastCgiExchange& ex) {
  bool is_unreachable = false;
  if (FastCgiSlot* slot = free_slot(is_unreachable)) {
    attach(*slot, ex);
    return true;
  }
  if (is_unreachable) {
    ex.fail_unreachable();
    return true;
  }
  if (FastCgiSlot* slot = pipeline_slot(ex)) {
    pipeline(*slot, ex);
    return true;
  }
  return false;
}

FastCgiSlot* FastCgiApp::pipeline_slot(const FastCgiExchange& ex) {
  if (!supervisor_ || !ex.can_send_whole(kFcgiPipelineMaxBodyBytes)) return nullptr;
  FastCgiSlot* chosen = nullptr;
  for (auto& slot : slots_) {
    const bool is_eligible = slot->state == FastCgiSlot::State::Busy && slot->ex && !slot->next &&
                             !slot->is_next_orphaned && slot->is_stdin_ended && slot->worker->is_current() &&
                             (config_.max_requests == 0 || slot->served + 2 <= config_.max_requests);
    if (!is_eligible) continue;
    // Prefer a worker whose request is answering already: it is likely to end first.
    if (slot->ex->has_output()) return slot.get();
    if (!chosen) chosen = slot.get();
  }
  return chosen;
}

void FastCgiApp::pipeline(FastCgiSlot& slot, FastCgiExchange& ex) {
  std::string bytes;
  ex.fill(bytes, 0);
  assert(ex.is_stdin_done());
  if (slot.out_pos == slot.out.size()) {
    slot.out.clear();
    slot.out_pos = 0;
  }
  slot.next_offset = slot.out.size();
  slot.out += bytes;
  ex.keep_for_replay(std::move(bytes));
  slot.next = &ex;  // ex.slot stays null until it runs: resume() and on_request_body() concern the running one
  flush(slot);
}

void FastCgiApp::release_next(FastCgiSlot& slot, bool is_unstarted) {
  slot.is_next_orphaned = false;
  FastCgiExchange* next = slot.next;
  if (!next) return;
  slot.next = nullptr;
  if (is_unstarted || next->is_idempotent()) {
    next->rewind();
    admission_.requeue_first(*next);
    return;
  }
  next->on_connection_lost(false);  // 502: it may have run
}

FastCgiSlot* FastCgiApp::free_slot(bool& is_unreachable) {
  for (auto& slot : slots_)
    if (slot->state == FastCgiSlot::State::Idle) return slot.get();
  bool has_failed = false;
  for (auto& slot : slots_) {
    if (slot->state != FastCgiSlot::State::Closed || !slot->is_available) continue;
    const std::error_code err = connect(*slot);
    if (!err) return slot.get();
    has_failed = true;
    // A managed worker's socket listens from before the worker starts: a refused connection means it has died.
    // Nothing connects to it again until its exit is seen and it is restarted. (Other errors, EMFILE or a full
    // backlog, say nothing about the worker: it is tried again next time.)
    if (!program_.empty() && (err.value() == ECONNREFUSED || err.value() == ENOENT)) slot->is_available = false;
  }
  // Waiting helps if some connection is still serving (it frees up), or, managed, while workers restart. An external
  // application that refuses us with nothing in flight is down: 502 rather than a wait for the timeout.
  const bool is_any_busy = std::any_of(slots_.begin(), slots_.end(), [](const auto& slot) {
    return slot->state != FastCgiSlot::State::Closed;
  });
  is_unreachable = has_failed && program_.empty() && !is_any_busy;
  return nullptr;
}

std::error_code FastCgiApp::connect(FastCgiSlot& slot) {
  Result<net::Connecting> connecting = net::connect_nonblocking(slot.address.addr);
  if (!connecting) {
    SPAWND_LOG_ERROR("fastcgi %s: connect to %s: %s", name_.c_str(), slot.address.text.c_str(),
                     connecting.error().message().c_str());
    return connecting.error();
  }
  slot.sock.fd = std::move(connecting->fd);
  slot.state = connecting->is_connected ? FastCgiSlot::State::Idle : FastCgiSlot::State::Connecting;
  slot.is_reused = false;
  slot.is_paused = false;
  slot.reader = fcgi::RecordReader();
  slot.out.clear();
  slot.out_pos = 0;
  slot.events = EPOLLIN | EPOLLOUT;
  slot.sock.watch = loop_.watch(slot.sock.get(), slot.events, [this, s = &slot](std::uint32_t ev) { on_io(*s, ev); });
  if (!slot.sock.watch) {
    const std::error_code err = errno_code();
    SPAWND_LOG_ERROR("fastcgi %s: epoll_ctl: %s", name_.c_str(), err.message().c_str());
    slot.sock.close();
    slot.state = FastCgiSlot::State::Closed;
    return err;
  }
  return {};
}

void FastCgiApp::attach(FastCgiSlot& slot, FastCgiExchange& ex) {
  if (slot.idle_timer) {
    loop_.cancel(slot.idle_timer);
    slot.idle_timer = 0;
  }
  ex.slot = &slot;
  slot.ex = &ex;
  slot.is_stdin_ended = false;
  if (slot.state == FastCgiSlot::State::Idle) slot.state = FastCgiSlot::State::Busy;
  // A Connecting slot turns Busy when the connection is up (on_io).
  pump(slot);
}

void FastCgiApp::pump(FastCgiSlot& slot) {
  if (slot.state != FastCgiSlot::State::Busy || !slot.ex) return;
  slot.ex->fill(slot.out, slot.out.size() - slot.out_pos);
  slot.is_stdin_ended = slot.ex->is_stdin_done();
  flush(slot);
}

void FastCgiApp::resume(FastCgiSlot& slot) {
  if (!slot.is_paused) return;
  slot.is_paused = false;
  watch(slot);
  on_readable(slot);
}

void FastCgiApp::watch(FastCgiSlot& slot) {
  if (!slot.sock) return;
  std::uint32_t events = slot.is_paused ? 0U : static_cast<std::uint32_t>(EPOLLIN);
  if (slot.state == FastCgiSlot::State::Connecting || slot.out_pos < slot.out.size()) events |= EPOLLOUT;
  if (events == 0) {
    // Paused with nothing to send: out of the loop altogether, or a hang-up of the application would be reported
    // again and again (epoll always reports EPOLLHUP/EPOLLERR) while we may not read.
    slot.sock.watch.reset();
    return;
  }
  if (!slot.sock.watch) {
    slot.events = events;
    slot.sock.watch = loop_.watch(slot.sock.get(), events, [this, s = &slot](std::uint32_t ev) { on_io(*s, ev); });
    if (!slot.sock.watch) drop(slot, "epoll_ctl failed", false);
    return;
  }
  if (events == slot.events) return;  // one epoll_ctl fewer per request in the common case
  slot.events = events;
  if (!slot.sock.watch.modify(events)) drop(slot, "epoll_ctl failed", false);
}

void FastCgiApp::on_io(FastCgiSlot& slot, std::uint32_t events) {
  if (slot.state == FastCgiSlot::State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(slot.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      SPAWND_LOG_ERROR("fastcgi %s: connect to %s: %s", name_.c_str(), slot.address.text.c_str(), std::strerror(err));
      drop(slot, nullptr, false);
      return;
    }
    slot.state = slot.ex ? FastCgiSlot::State::Busy : FastCgiSlot::State::Idle;
    pump(slot);
    if (!slot.sock) return;
  }
  if ((events & EPOLLOUT) != 0) {
    flush(slot);
    if (!slot.sock) return;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) on_readable(slot);
}

void FastCgiApp::flush(FastCgiSlot& slot) {
  while (slot.out_pos < slot.out.size()) {
    const ssize_t n = sys::retry_eintr([&] {
      return ::send(slot.sock.get(), slot.out.data() + slot.out_pos, slot.out.size() - slot.out_pos, MSG_NOSIGNAL);
    });
    if (n > 0) {
      slot.out_pos += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) break;
    drop(slot, n < 0 ? std::strerror(errno) : "send failed", false);
    return;
  }
  if (slot.out_pos == slot.out.size()) {
    slot.out.clear();
    slot.out_pos = 0;
    // Room again: more of the request body can go.
    if (slot.ex && slot.state == FastCgiSlot::State::Busy) {
      slot.ex->fill(slot.out, 0);
      slot.is_stdin_ended = slot.ex->is_stdin_done();
      if (!slot.out.empty()) {
        flush(slot);
        return;
      }
    }
  }
  watch(slot);
}

void FastCgiApp::on_readable(FastCgiSlot& slot, bool is_eof_needed) {
  char buf[kFcgiReadChunkBytes];
  // Records left in the reader when the client's side filled up go first.
  if (!process_records(slot)) return;
  for (int i = 0; i < kFcgiMaxReadsPerEvent && slot.sock && !slot.is_paused; ++i) {
    ssize_t n = sys::read(slot.sock.get(), buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      const bool was_idle = slot.state == FastCgiSlot::State::Idle;
      slot.is_peer_closed = true;
      // A managed worker never closes its connection: it has died (its listening socket may outlive this connection
      // for an instant, and a connection made to it then would be lost with it), or it is broken. Either way nothing
      // connects to it again until it has exited and been restarted.
      drop(slot, was_idle ? nullptr : (n == 0 ? "connection closed before FCGI_END_REQUEST" : std::strerror(errno)),
           slot.worker != nullptr);
      return;
    }
    slot.reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!process_records(slot)) return;
    // A short read found the socket drained for now. Back in the loop, epoll (level-triggered) reports whatever comes
    // next, EOF included, so the read that would most often only say EAGAIN is saved: it sat between the last
    // records and the response's send, which happens after we return.
    if (!is_eof_needed && static_cast<std::size_t>(n) < sizeof buf) return;
  }
}

bool FastCgiApp::process_records(FastCgiSlot& slot) {
  fcgi::Record record;
  if (slot.is_paused) watch(slot);  // stop reading until resume()
  while (slot.sock && !slot.is_paused) {
    switch (slot.reader.next(record)) {
      case fcgi::RecordReader::Status::NeedMore: return true;
      case fcgi::RecordReader::Status::Malformed:
        drop(slot, "malformed record (version is not 1)", true);
        return false;
      case fcgi::RecordReader::Status::Record:
        if (!on_record(slot, record)) return false;
        break;
    }
  }
  if (slot.sock && slot.is_paused) watch(slot);
  return false;
}

bool FastCgiApp::on_record(FastCgiSlot& slot, const fcgi::Record& record) {
  using fcgi::RecordType;
  if (record.request_id == fcgi::kNullRequestId) return true;  // FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE: unused
  if (record.request_id != kFcgiRequestId || slot.state == FastCgiSlot::State::Idle) {
    drop(slot, "record for a request that is not in progress", true);
    return false;
  }
  const bool is_aborting = slot.state == FastCgiSlot::State::Aborting || slot.ex == nullptr;
  if (record.is(RecordType::Stdout)) {
    if (!is_aborting && !record.content.empty()) {
      FastCgiExchange* ex = slot.ex;
      if (!ex->on_stdout(record.content) && slot.ex == ex) {
        // Answered already (a local redirect) or the client is gone: the rest of the output is not wanted.
        withdraw(*ex, false);
      }
    }
    return slot.sock.get() >= 0;
  }
  if (record.is(RecordType::Stderr)) {
    log_stderr(slot, record.content, record.content.empty());
    return true;
  }
  if (record.is(RecordType::EndRequest)) {
    const std::optional<fcgi::EndRequestBody> end = fcgi::parse_end_request(record.content);
    if (!end) {
      drop(slot, "malformed FCGI_END_REQUEST", true);
      return false;
    }
    on_end_request(slot, end->protocol_status);
    return slot.sock.get() >= 0;
  }
  drop(slot, "unexpected record type from the application", true);
  return false;
}

void FastCgiApp::on_end_request(FastCgiSlot& slot, fcgi::ProtocolStatus status) {
  log_stderr(slot, {}, true);
  FastCgiExchange* ex = slot.ex;
  // An application may end a request before reading all of it (a body over its limit). The rest of the request,
  // still in `out` or not yet sent, would reach it where it expects the next FCGI_BEGIN_REQUEST: not reusable.
  // A pipelined request's bytes behind it do not count: they are the next request's.
  const bool has_next = slot.next || slot.is_next_orphaned;
  const bool is_clean = slot.is_stdin_ended && (slot.out_pos == slot.out.size() || (has_next && slot.out_pos >= slot.next_offset));
  // The worker reads the next request only after this one: it cannot have started it if this one did not end clean.
  if (!is_clean) release_next(slot, true);
  slot.ex = nullptr;
  slot.state = FastCgiSlot::State::Idle;
  slot.is_reused = true;
  slot.is_paused = false;
  if (slot.abort_timer) {
    loop_.cancel(slot.abort_timer);
    slot.abort_timer = 0;
  }
  ++slot.served;
  if (supervisor_) supervisor_->healthy();
  if (slot.next || slot.is_next_orphaned) {
    // The pipelined request runs now, before anything below can see this slot Idle (ex's end may start a request).
    FastCgiExchange* next = slot.next;
    slot.next = nullptr;
    slot.is_next_orphaned = false;
    slot.ex = next;
    slot.state = FastCgiSlot::State::Busy;
    slot.is_stdin_ended = true;
    if (next) {
      next->slot = &slot;
      next->started();
    } else {
      abort_running(slot);  // its exchange went away while it waited
    }
    if (ex) {
      ex->slot = nullptr;
      ex->on_end_request(status);
    }
    if (slot.sock) watch(slot);
    return;
  }
  if (ex) {
    ex->slot = nullptr;
    ex->on_end_request(status);
  }
  if ((!is_clean || !should_keep(slot)) && slot.sock) {
    drop(slot, nullptr, false);  // gives the slot back to the queue (admission_.slot_freed())
    return;
  }
  if (!slot.sock) return;  // dropped while the exchange ended (drop() gave the slot back already)
  if (!slot.worker) {
    slot.idle_timer = loop_.add_timer(config_.idle_timeout_ms, [this, s = &slot] {
      s->idle_timer = 0;
      if (s->state == FastCgiSlot::State::Idle) drop(*s, nullptr, false);
    });
  }
  if (slot.worker && slot.worker->is_running()) {
    if (config_.max_requests > 0 && slot.served >= config_.max_requests) {
      SPAWND_LOG_INFO("fastcgi %s: worker %d served %llu requests: replacing it", name_.c_str(),
                      static_cast<int>(slot.worker->pid()), fcgi_ull(slot.served));
      recycle(slot);
      return;
    }
    if (!slot.worker->is_current()) {
      recycle(slot);  // the handler was replaced while this worker served its last request
      return;
    }
  }
  watch(slot);
  admission_.slot_freed();
}

bool FastCgiApp::should_keep(const FastCgiSlot& slot) const {
  if (slot.worker) return true;  // managed: the worker's own socket; nobody else waits for it
  if (config_.keep_conn == 0) return false;
  std::size_t idle = 0;
  for (const auto& other : slots_) {
    if (other.get() == &slot) continue;
    if (other->state == FastCgiSlot::State::Idle) ++idle;
    // A request of ours that has heard nothing back may sit in the application's listen backlog, waiting for the
    // very process this idle connection would hold (php-fpm: one connection per process): the deadlock of issue 19.
    const bool may_wait_for_accept =
        other->state == FastCgiSlot::State::Connecting ||
        (other->state == FastCgiSlot::State::Busy && other->ex != nullptr && !other->ex->has_output());
    if (may_wait_for_accept) return false;
  }
  return idle < config_.keep_conn;
}

void FastCgiApp::log_stderr(FastCgiSlot& slot, std::string_view bytes, bool flush_partial) {
  auto emit = [&](std::string_view line) {
    SPAWND_LOG_WARN("fastcgi[%llu] %s: %.*s", fcgi_ull(slot.ex ? slot.ex->request_id() : 0), name_.c_str(),
                    static_cast<int>(line.size()), line.data());
  };
  slot.stderr_lines.append(bytes, emit);
  if (flush_partial) slot.stderr_lines.flush(emit);
}

void FastCgiApp::drop(FastCgiSlot& slot, const char* why, bool kill_worker) {
  if (why) SPAWND_LOG_ERROR("fastcgi %s: %s: %s", name_.c_str(), slot.address.text.c_str(), why);
  slot.sock.close();
  if (slot.abort_timer) {
    loop_.cancel(slot.abort_timer);
    slot.abort_timer = 0;
  }
  if (slot.idle_timer) {
    loop_.cancel(slot.idle_timer);
    slot.idle_timer = 0;
  }
  // Retrying is for an external application that closed a kept-open connection while idle. A managed worker
  // never closes its connection: if it is gone, the worker died, maybe of this very request.
  const bool was_reused = slot.is_reused && program_.empty();
  // A pipelined request behind the running one: with every record read (EOF), the running one had not ended, so
  // the worker never began the next; otherwise unread records may hold that end, and the next may be running.
  const bool is_next_unstarted = slot.is_peer_closed;
  slot.is_peer_closed = false;
  slot.state = FastCgiSlot::State::Closed;
  slot.out.clear();
  slot.out_pos = 0;
  slot.stderr_lines = StderrLines();
  slot.is_paused = false;
  if (kill_worker && slot.worker && slot.worker->is_running()) {
    slot.is_available = false;  // its exit restarts it; until then nothing connects to it
    slot.worker->terminate();
  }
  release_next(slot, is_next_unstarted);  // queued first, then the running one before it: it is older
  if (FastCgiExchange* ex = slot.ex) {
    slot.ex = nullptr;
    ex->slot = nullptr;
    if (ex->on_connection_lost(was_reused)) admission_.requeue_first(*ex);
  }
  admission_.slot_freed();
}

void FastCgiApp::withdraw(FastCgiExchange& ex, bool kill_worker) {
  if (admission_.withdraw(ex)) return;
  FastCgiSlot* slot = ex.slot;
  if (!slot) {
    // Pipelined behind another request: its records are sent, so the worker will run it; its output is discarded.
    for (auto& s : slots_) {
      if (s->next != &ex) continue;
      s->next = nullptr;
      s->is_next_orphaned = true;
      if (kill_worker) {
        // It waited its whole timeout behind the running request: that one is hung.
        SPAWND_LOG_ERROR("fastcgi %s: stopping worker %d", name_.c_str(), static_cast<int>(s->worker->pid()));
        drop(*s, nullptr, true);
      }
      return;
    }
    return;
  }
  ex.slot = nullptr;
  slot->ex = nullptr;
  if (kill_worker || slot->state != FastCgiSlot::State::Busy) {
    // Timed out (the application is hung), or the connection was not even up: it cannot be trusted any more.
    if (kill_worker && slot->worker && slot->worker->is_running())
      SPAWND_LOG_ERROR("fastcgi %s: stopping worker %d", name_.c_str(), static_cast<int>(slot->worker->pid()));
    drop(*slot, nullptr, kill_worker);
    return;
  }
  abort_running(*slot);
}

void FastCgiApp::abort_running(FastCgiSlot& slot_ref) {
  FastCgiSlot* slot = &slot_ref;
  // The client went away, or we answered already (a local redirect): FCGI_ABORT_REQUEST (spec §5.4); the
  // connection is free again at FCGI_END_REQUEST. Not at once: the application may have ended the request already,
  // its FCGI_END_REQUEST among the records being handled now (a local redirect and the end in one write) or left in
  // the reader while the client's side was full. An abort for a request that has ended arrives where the application
  // expects the next FCGI_BEGIN_REQUEST, and a strict one (php-fpm) drops the connection, failing the next request
  // on it. So the records at hand go first, and the abort only if the request is still running after them.
  slot->state = FastCgiSlot::State::Aborting;
  slot->is_paused = false;
  watch(*slot);
  slot->abort_timer = loop_.add_timer(0, [this, slot] {
    slot->abort_timer = 0;
    on_readable(*slot, true);  // may end the request (Idle, maybe Busy again) or drop the connection (Closed)
    if (!slot->sock || slot->state != FastCgiSlot::State::Aborting) return;
    // With a request pipelined behind it, the worker reads this abort only after that one has run (the SDK runs a
    // handler as soon as its FCGI_STDIN ends): it ends nothing then, and is ignored (§3.3).
    fcgi::append_abort_request(slot->out, kFcgiRequestId);
    slot->abort_timer = loop_.add_timer(config_.timeout_ms, [this, slot] {
      slot->abort_timer = 0;
      drop(*slot, "no FCGI_END_REQUEST after FCGI_ABORT_REQUEST", true);
    });
    flush(*slot);
  });
}

void FastCgiApp::reload_if_replaced() {
  if (!supervisor_ || !supervisor_->check_replaced()) return;
  // Idle workers now; a busy one when its request ends (on_end_request).
  for (auto& slot : slots_) {
    if (slot->worker->is_running() && !slot->worker->is_current() &&
        (slot->state == FastCgiSlot::State::Idle || slot->state == FastCgiSlot::State::Closed))
      recycle(*slot);
  }
}

void FastCgiApp::recycle(FastCgiSlot& slot) {
  slot.is_available = false;
  drop(slot, nullptr, false);
  slot.worker->recycle();
}

std::unique_ptr<SupervisedProcess> FastCgiApp::make_worker(FastCgiSlot& slot) {
  SupervisedProcess::Hooks hooks;
  hooks.spawn = [this, s = &slot]() -> Result<ChildProcess> {
    // "<app>.<worker>": short whatever the handler's name (a unix socket path has at most 107 bytes).
    const std::string path = gw_->socket_dir_ + "/" + std::to_string(id_) + "." + std::to_string(s->index);
    Result<net::SockAddr> address = net::unix_address(path);
    if (!address) return address.error();
    Result<Fd> listener = net::listen_on(*address, {.backlog = kFcgiListenBacklog, .stale = net::StaleSocket::Remove});
    if (!listener) return listener.error();
    s->address.addr = *address;
    SpawnSpec spec;
    spec.path = program_;
    spec.argv.push_back(program_);
    spec.envp = config_.base_env;
    spec.cwd = config_.directory;
    spec.stdin_fd = listener->get();  // FCGI_LISTENSOCK_FILENO
    spec.stdout_fd = gw_->dev_null_.get();
    spec.stderr_fd = STDERR_FILENO;  // the SDK writes whole lines ("handler NAME: ...") with one write each
    return spawn_process(spec);
  };
  hooks.on_started = [this, s = &slot](pid_t pid) {
    s->served = 0;
    s->address.text = "worker " + std::to_string(pid);
    s->is_available = true;
    admission_.slot_freed();
  };
  hooks.on_exited = [this, s = &slot](int) {
    s->is_available = false;
    // Its connection ends with it: a request on it gets 502 (drop() decides; the socket may have reported EOF first).
    // What it wrote before it died is read first: with its EOF seen, a request pipelined behind the one it died in
    // is known never to have started, and runs on another worker.
    if (s->sock && !s->is_paused) on_readable(*s, true);
    if (s->sock) drop(*s, nullptr, false);
  };
  return std::make_unique<SupervisedProcess>(*supervisor_, "worker", std::move(hooks));
}

}  // namespace spawnd::server
