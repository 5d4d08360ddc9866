// bench/load_generator.cpp — the open-loop load generator (bench/load_generator.h).
//
// The loop, each turn: release the requests that are due into the backlog; hand the backlog to idle connections;
// sleep in epoll_pwait2() until the next due time (nanosecond timeout) or a socket event; on events, connect, write
// and read, feeding llhttp. Connections are indexed by epoll's u32 and registered edge-triggered for in and out
// once, so no epoll_ctl(MOD) is needed on the way: a handler runs until EAGAIN.
#include "bench/load_generator.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <sstream>
#include <memory>
#include <stdexcept>

#include "common/fd.h"
#include "common/net_addr.h"

namespace spawnd::bench {

namespace {

using Ns = std::int64_t;  // CLOCK_MONOTONIC nanoseconds

Ns now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Ns{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

enum class State { Closed, Connecting, Idle, Writing, Reading };

struct Conn {
  Fd fd;
  State state = State::Closed;
  llhttp_t parser{};
  bool is_complete = false;  // set by on_message_complete
  bool is_head = false;      // a HEAD request: the response has no body (llhttp must be told)
  const std::string* out = nullptr;  // the request being written
  std::size_t written = 0;
  Ns due = 0, sent_at = 0;
  std::int64_t seq = -1;     // the request in flight, -1 when none
};

int on_headers_complete(llhttp_t* p) { return static_cast<Conn*>(p->data)->is_head ? 1 : 0; }
int on_message_complete(llhttp_t* p) {
  static_cast<Conn*>(p->data)->is_complete = true;
  return HPE_PAUSED;  // one response per request: bytes after it are not ours to parse
}

class Generator {
 public:
  Generator(const OpenLoopSpec& spec, bool (*stop_early)()) : spec_(spec), stop_early_(stop_early) {
    if (spec.requests.empty()) throw std::invalid_argument("open loop: no request to send");
    if (!(spec.rate > 0) || spec.connections <= 0 || !(spec.duration_s > 0) || !(spec.timeout_s > 0))
      throw std::invalid_argument("open loop: rate, connections, duration and timeout must be positive");
    resolve();
    for (const auto& r : spec.requests) {
      messages_.push_back(render_request(r, spec.host, spec.port, spec.connection_per_request));
      is_head_.push_back(r.method == "HEAD");
    }
    llhttp_settings_init(&settings_);
    settings_.on_headers_complete = on_headers_complete;
    settings_.on_message_complete = on_message_complete;
    epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    conns_ = std::vector<Conn>(static_cast<std::size_t>(spec.connections));
  }

  OpenLoopReport run() {
    r_.offered_rps = spec_.rate;
    r_.sent_by_request.assign(messages_.size(), 0);
    r_.duration_s = spec_.duration_s;
    r_.scheduled = static_cast<std::int64_t>(std::floor(spec_.rate * spec_.duration_s + 1e-9));
    if (!spec_.connection_per_request) preconnect();
    const double cpu0 = thread_cpu_s();
    t0_ = now_ns();
    const Ns schedule_end = t0_ + static_cast<Ns>(spec_.duration_s * 1e9);
    const Ns hard_end = schedule_end + static_cast<Ns>(spec_.timeout_s * 1e9);
    const Ns timeout = static_cast<Ns>(spec_.timeout_s * 1e9);
    Ns next_check = t0_;
    epoll_event events[256];
    while (true) {
      Ns now = now_ns();
      release_due(now);
      dispatch(now);
      if (done_ == r_.scheduled || now >= hard_end) break;
      if (now >= next_check) {
        if (stop_early_ && stop_early_()) break;
        expire(now, timeout);
        next_check = now + 50'000'000;
      }
      Ns wake = std::min(next_check, hard_end);
      // Wake at the next due time, to release that request on time (into the backlog if no connection is idle).
      if (next_seq_ < r_.scheduled) wake = std::min(wake, due_of(next_seq_));
      const Ns wait = std::max<Ns>(0, wake - now);
      timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
      const int n = epoll_pwait2(epoll_.get(), events, 256, &ts, nullptr);
      if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("epoll_pwait2: ") + std::strerror(errno));
      now = now_ns();
      for (int i = 0; i < n; ++i) on_event(conns_[events[i].data.u32], events[i].events, now);
    }
    const Ns end = now_ns();
    // What never got an answer by the end of the drain: in flight is a timeout, in the backlog is unsent.
    for (Conn& c : conns_)
      if (c.seq >= 0) {
        ++r_.timeouts;
        close_conn(c);
      }
    r_.unsent = static_cast<std::int64_t>(backlog_.size());
    r_.elapsed_s = static_cast<double>(end - t0_) / 1e9;
    r_.generator_cpu_s = thread_cpu_s() - cpu0;
    const double span = std::max(spec_.duration_s, static_cast<double>(last_response_ - t0_) / 1e9);
    r_.achieved_rps = static_cast<double>(r_.responses) / span;
    warn_if_saturated();
    return std::move(r_);
  }

 private:
  Ns due_of(std::int64_t seq) const {
    return t0_ + static_cast<Ns>(std::llround(static_cast<double>(seq) * 1e9 / spec_.rate));
  }

  void resolve() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(spec_.port);
    if (const int rc = getaddrinfo(spec_.host.c_str(), port.c_str(), &hints, &res); rc != 0)
      throw std::runtime_error("cannot resolve " + spec_.host + ": " + gai_strerror(rc));
    std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
    addr_len_ = res->ai_addrlen;
    family_ = res->ai_family;
    freeaddrinfo(res);
  }

  // Starts a non-blocking connect on `c`. False (counted as a connect error) if it failed at once.
  bool open(Conn& c) {
    c.fd.reset(socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) return ++r_.connect_errors, false;
    const int one = 1;
    setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&addr_), addr_len_) != 0 && errno != EINPROGRESS) {
      last_connect_errno_ = errno;
      c.fd.reset();
      return ++r_.connect_errors, false;
    }
    // Added after connect(): an unconnected socket would report EPOLLOUT|EPOLLHUP at once. Edge-triggered, the add
    // itself reports a connect that has already completed.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = static_cast<std::uint32_t>(&c - conns_.data());
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) return c.fd.reset(), ++r_.connect_errors, false;
    c.state = State::Connecting;
    return true;
  }

  void close_conn(Conn& c) {
    c.fd.reset();  // close() also removes it from the epoll set
    c.state = State::Closed;
    c.seq = -1;
  }

  // Opens every keep-alive connection before t0, so that no request pays for a connect. Throws if none comes up.
  void preconnect() {
    for (Conn& c : conns_) open(c);
    const Ns deadline = now_ns() + static_cast<Ns>(spec_.timeout_s * 1e9);
    epoll_event events[256];
    auto pending = [&] { return std::count_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.state == State::Connecting; }); };
    while (pending() > 0 && now_ns() < deadline) {
      const int n = epoll_wait(epoll_.get(), events, 256, 50);
      for (int i = 0; i < n; ++i) finish_connect(conns_[events[i].data.u32], now_ns());
    }
    for (Conn& c : conns_)
      if (c.state == State::Connecting) close_conn(c);
    if (std::none_of(conns_.begin(), conns_.end(), [](const Conn& c) { return c.state == State::Idle; }))
      throw std::runtime_error("cannot connect to " + net::join_host_port(spec_.host, spec_.port) + ": " +
                               std::strerror(last_connect_errno_));
    r_.connect_errors = 0;  // before t0: not the measured run's
  }

  // A connecting socket became writable (or failed). Returns true if it is connected.
  bool finish_connect(Conn& c, Ns now) {
    if (c.state != State::Connecting) return c.state != State::Closed;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == EINPROGRESS || err == EALREADY) return false;
    if (err != 0) {
      last_connect_errno_ = err;
      fail(c, r_.connect_errors, now);
      return false;
    }
    // SO_ERROR is 0 both when connected and while still connecting: getpeername tells them apart.
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (getpeername(c.fd.get(), reinterpret_cast<sockaddr*>(&peer), &plen) != 0) return false;
    c.state = c.seq >= 0 ? State::Writing : State::Idle;
    return true;
  }

  void release_due(Ns now) {
    while (next_seq_ < r_.scheduled && due_of(next_seq_) <= now) {
      const Ns lag = now - due_of(next_seq_);
      r_.release_lag_us.record(lag / 1000);
      if (static_cast<double>(lag) > spec_.late_ms * 1e6) ++r_.self_late;
      backlog_.push_back(next_seq_++);
    }
  }

  // Hands backlog requests to connections that can take one (idle ones, and closed ones, reopened), round robin.
  void dispatch(Ns now) {
    const std::size_t n = conns_.size();
    for (std::size_t k = 0; k < n && !backlog_.empty(); ++k) {
      Conn& c = conns_[(rr_ + k) % n];
      if (c.seq >= 0 || c.state == State::Connecting) continue;
      if (c.state == State::Idle && spec_.connection_per_request) close_conn(c);
      if (c.state == State::Closed && !open(c)) {
        fail_request(now);
        backlog_.pop_front();
        continue;
      }
      start(c, backlog_.front(), now);
      backlog_.pop_front();
    }
    rr_ = (rr_ + 1) % n;
  }

  void start(Conn& c, std::int64_t seq, Ns now) {
    const std::size_t i = static_cast<std::size_t>(seq % static_cast<std::int64_t>(messages_.size()));
    c.seq = seq;
    c.due = due_of(seq);
    c.sent_at = now;
    c.out = &messages_[i];
    c.written = 0;
    c.is_head = is_head_[i];
    c.is_complete = false;
    llhttp_init(&c.parser, HTTP_RESPONSE, &settings_);
    c.parser.data = &c;
    ++r_.sent;
    ++r_.sent_by_request[i];
    const double lag_ms = static_cast<double>(now - c.due) / 1e6;
    r_.max_send_lag_ms = std::max(r_.max_send_lag_ms, lag_ms);
    if (lag_ms > spec_.late_ms) ++r_.late_sends;
    if (c.state == State::Idle) {
      c.state = State::Writing;
      write_some(c, now);
    }
  }

  void fail_request(Ns now) {
    ++done_;
    last_response_ = std::max(last_response_, now);
  }

  void fail(Conn& c, std::int64_t& counter, Ns now) {
    ++counter;
    if (c.seq >= 0) fail_request(now);
    close_conn(c);
  }

  void write_some(Conn& c, Ns now) {
    while (c.written < c.out->size()) {
      const ssize_t n = send(c.fd.get(), c.out->data() + c.written, c.out->size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        return;
      } else {
        return fail(c, r_.write_errors, now);
      }
    }
    c.state = State::Reading;
    read_some(c, now);
  }

  void read_some(Conn& c, Ns now) {
    char buf[16384];
    while (c.state == State::Reading) {
      const ssize_t n = recv(c.fd.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n < 0) return fail(c, r_.read_errors, now);
      const llhttp_errno_t e = n == 0 ? llhttp_finish(&c.parser) : llhttp_execute(&c.parser, buf, static_cast<std::size_t>(n));
      if (c.is_complete) return complete(c, now, n == 0);
      if (n == 0) return fail(c, r_.read_errors, now);  // closed before the response was complete
      if (e != HPE_OK) return fail(c, r_.parse_errors, now);
    }
  }

  void complete(Conn& c, Ns now, bool is_closed) {
    const int status = llhttp_get_status_code(&c.parser);
    ++r_.statuses[status];
    ++r_.responses;
    if (status < 200 || status >= 400) ++r_.non_2xx_3xx;
    r_.latency_us.record((now - c.due) / 1000);
    ++done_;
    last_response_ = std::max(last_response_, now);
    const bool keep = !is_closed && !spec_.connection_per_request && llhttp_should_keep_alive(&c.parser) != 0;
    c.seq = -1;
    if (keep)
      c.state = State::Idle;
    else
      close_conn(c);
  }

  void on_event(Conn& c, std::uint32_t events, Ns now) {
    if (c.state == State::Connecting) {
      if (!finish_connect(c, now)) return;
      if (c.state == State::Idle) return;  // a reconnect with no request yet
    }
    if (c.state == State::Writing && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) write_some(c, now);
    if (c.state == State::Reading && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) read_some(c, now);
    if (c.state == State::Idle && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) close_conn(c);  // closed while idle
  }

  void expire(Ns now, Ns timeout) {
    for (Conn& c : conns_)
      if (c.seq >= 0 && now - c.sent_at > timeout) fail(c, r_.timeouts, now);
  }

  void warn_if_saturated() {
    const double wall = r_.elapsed_s > 0 ? r_.elapsed_s : 1;
    char buf[256];
    if (r_.is_generator_saturated()) {
      std::snprintf(buf, sizeof buf, "the load generator used %.0f %% of a core: it, not the server, may be the limit",
                    100 * r_.generator_cpu_s / wall);
      r_.warnings.emplace_back(buf);
    }
    if (r_.scheduled > 0 && static_cast<double>(r_.self_late) > 0.001 * static_cast<double>(r_.scheduled)) {
      std::snprintf(buf, sizeof buf, "the load generator itself released %lld of %lld requests more than %.0f ms late",
                    static_cast<long long>(r_.self_late), static_cast<long long>(r_.scheduled), spec_.late_ms);
      r_.warnings.emplace_back(buf);
    }
  }

  const OpenLoopSpec& spec_;
  bool (*stop_early_)();
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  int family_ = AF_INET;
  int last_connect_errno_ = ECONNREFUSED;
  std::vector<std::string> messages_;
  std::vector<bool> is_head_;
  llhttp_settings_t settings_{};
  Fd epoll_;
  std::vector<Conn> conns_;
  std::deque<std::int64_t> backlog_;
  std::int64_t next_seq_ = 0, done_ = 0;
  std::size_t rr_ = 0;
  Ns t0_ = 0, last_response_ = 0;
  OpenLoopReport r_;
};

}  // namespace

HttpUrl parse_http_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme)
    throw std::invalid_argument("not an http:// URL: " + std::string(url) + " (https is not supported)");
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  HttpUrl u;
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target.front() == '?') u.target.insert(0, "/");
  std::string_view host = net::host_without_port(authority);
  const std::string_view port = authority.size() > host.size() ? authority.substr(host.size() + 1) : std::string_view();
  if (host.starts_with('[')) {  // [IPv6]:port
    if (!host.ends_with(']')) throw std::invalid_argument("bad IPv6 literal in " + std::string(url));
    host = host.substr(1, host.size() - 2);
  }
  u.host = host;
  if (u.host.empty()) throw std::invalid_argument("no host in " + std::string(url));
  if (!port.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
      throw std::invalid_argument("bad port in " + std::string(url));
    u.port = static_cast<std::uint16_t>(p);
  }
  return u;
}

LoadRequest custom_request(const HttpUrl& url, const std::string& method, const std::vector<std::string>& fields,
                           const std::string& body_file) {
  LoadRequest r{method, url.target, fields, ""};
  if (!body_file.empty()) {
    std::ifstream in(body_file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read the body file " + body_file);
    std::ostringstream text;
    text << in.rdbuf();
    r.body = text.str();
  }
  return r;
}

std::string render_request(const LoadRequest& r, std::string_view host, std::uint16_t port, bool connection_close) {
  std::string m = r.method + " " + r.target + " HTTP/1.1\r\nHost: ";
  m += port != 80 ? net::join_host_port(host, port) : net::uri_host(host);
  m += "\r\n";
  for (const auto& f : r.fields) m += f + "\r\n";
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT") m += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (connection_close) m += "Connection: close\r\n";
  m += "\r\n" + r.body;
  return m;
}

double OpenLoopReport::error_ratio() const {
  return scheduled > 0 ? static_cast<double>(errors() + non_2xx_3xx) / static_cast<double>(scheduled) : 0;
}

double OpenLoopReport::latency_ms(double p) const {
  return static_cast<double>(latency_us.value_at_percentile(p)) / 1000.0;
}

nlohmann::json OpenLoopReport::to_json() const {
  nlohmann::json statuses_j = nlohmann::json::object();
  for (const auto& [code, n] : statuses) statuses_j[std::to_string(code)] = n;
  return {{"offered_rps", offered_rps},
          {"achieved_rps", achieved_rps},
          {"duration_s", duration_s},
          {"elapsed_s", elapsed_s},
          {"scheduled", scheduled},
          {"sent", sent},
          {"responses", responses},
          {"latency_ms",
           {{"p50", latency_ms(50)}, {"p90", latency_ms(90)}, {"p99", latency_ms(99)}, {"p99_9", latency_ms(99.9)},
            {"max", static_cast<double>(latency_us.max()) / 1000.0}, {"mean", latency_us.mean() / 1000.0},
            {"min", static_cast<double>(latency_us.min()) / 1000.0}}},
          {"errors",
           {{"total", errors()}, {"connect", connect_errors}, {"read", read_errors}, {"write", write_errors},
            {"timeout", timeouts}, {"parse", parse_errors}, {"unsent", unsent}}},
          {"non_2xx_3xx", non_2xx_3xx},
          {"error_ratio", error_ratio()},
          {"late_sends", late_sends},
          {"self_late_sends", self_late},
          {"max_send_lag_ms", max_send_lag_ms},
          {"release_lag_ms", {{"p99", static_cast<double>(release_lag_us.value_at_percentile(99)) / 1000.0},
                              {"max", static_cast<double>(release_lag_us.max()) / 1000.0}}},
          {"statuses", statuses_j},
          {"generator_cpu_s", generator_cpu_s},
          {"warnings", warnings}};
}

OpenLoopReport run_open_loop(const OpenLoopSpec& spec, bool (*stop_early)()) {
  return Generator(spec, stop_early).run();
}

}  // namespace spawnd::bench
