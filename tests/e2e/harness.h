// tests/e2e/harness.h — what end-to-end tests need to run a real spawnd and talk raw HTTP to it over loopback.
//
// No mocks: Spawnd starts the built executable (SPAWND_BINARY) on 127.0.0.1 port 0 and reads the port from its
// "listening on" line; the client helpers use plain blocking sockets with poll() timeouts. Every wait is bounded,
// so a broken server fails a test instead of hanging it.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace spawnd::e2e {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // Writes `content` to path()/relative (creating parent directories); returns the full path.
  std::string write(const std::string& relative, std::string_view content, bool is_executable = false) const;
  // Copies the program `from` to path()/relative (creating parent directories), executable by its owner; returns
  // the full path.
  std::string install(const std::string& relative, const std::string& from) const;
  // Replaces path()/relative with a copy of `from` as a deploy does: copied beside it under a temporary name, then
  // rename()d over it (a new inode; processes running the old file keep it).
  void deploy(const std::string& relative, const std::string& from) const;

 private:
  std::string path_;
};

// tests/cgi/ of the source tree: the CGI programs (sh, Perl, Python, PHP) the e2e tests run.
extern const std::string kCgiDir;

// A running spawnd. stdout and stderr are collected (stderr_text(), stdout_text()) by a reader thread, so a chatty
// server never blocks on a full pipe.
class Spawnd {
 public:
  // Starts SPAWND_BINARY (or `binary`, e.g. an installed spawnd) with `args` (give --root and the rest; --listen
  // 127.0.0.1:0 is added unless `args` has a --listen of its own), with spawnd's environment plus `extra_env`, and
  // waits up to 10 s for the listening line. Throws std::runtime_error if it does not come.
  explicit Spawnd(std::vector<std::string> args, std::map<std::string, std::string> extra_env = {},
                  std::string binary = {});
  ~Spawnd();  // SIGKILLs and reaps a server that is still running
  Spawnd(const Spawnd&) = delete;
  Spawnd& operator=(const Spawnd&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // The HTTPS port (from the "listening on https://" line, printed before the plain one); 0 without --tls-listen.
  [[nodiscard]] std::uint16_t tls_port() const noexcept { return tls_port_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] std::string stderr_text() const;
  [[nodiscard]] std::string stdout_text() const;
  // Sends `sig` (default SIGTERM) and waits up to `timeout_ms` for the exit. Returns the wait status, or -1 if the
  // server had to be SIGKILLed after the timeout. `sig` 0 sends nothing: it waits for an exit the test already
  // caused (e.g. a SIGTERM sent with kill() while a download was still running).
  int stop(int timeout_ms = 10000, int sig = 15);

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  Fd out_, err_;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::string out_text_, err_text_;
  bool is_reaped_ = false;
};

// The outcome of a spawnd run to its end: for start-up failures (bad options, a missing root).
struct ExitResult {
  int status = -1;  // the wait status; -1 if spawnd did not exit within the timeout (it was SIGKILLed)
  std::string stdout_text;
  std::string stderr_text;
};
// The exit code of a run that exited; -1 if it was killed by a signal or did not exit in time.
[[nodiscard]] int exit_code(const ExitResult& r);
// Runs SPAWND_BINARY with exactly `args` (no --listen is added) and waits up to `timeout_ms` for it to exit.
[[nodiscard]] ExitResult run_spawnd(const std::vector<std::string>& args, int timeout_ms = 10000);
// Runs `argv` (argv[0] a path, or a name looked up in PATH) as run_spawnd runs spawnd: stdin from /dev/null, stdout and
// stderr collected, the test's environment, killed (status -1) if it has not exited within `timeout_ms`. For the
// tools tests drive: cmake, cpack, dpkg-deb, systemd-analyze, setpriv.
[[nodiscard]] ExitResult run_command(std::vector<std::string> argv, int timeout_ms);

struct HttpResponse {
  int status = 0;              // 0: no (complete) response before the timeout or the close
  std::string status_line;     // "HTTP/1.1 200 OK"
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;            // chunked coding removed
  bool was_chunked = false;
  bool is_complete = false;    // the body ended as framed (length, last chunk), or by close when unframed

  // The first field named `name` (case-insensitive).
  [[nodiscard]] std::optional<std::string> field(std::string_view name) const;
  [[nodiscard]] std::size_t count(std::string_view name) const;
};

// A port on 127.0.0.1 that was free a moment ago (for a peer that needs a number: nginx's configuration,
// systemd-socket-activate -l). Throws std::runtime_error if none can be had.
[[nodiscard]] std::uint16_t free_port();
// Connects to 127.0.0.1:port (blocking socket). Throws std::runtime_error on failure.
[[nodiscard]] Fd connect_to(std::uint16_t port);
// Connects to `address` (a numeric IPv4 or IPv6 address without brackets: "127.0.0.1", "::1") port `port` (blocking
// socket). Throws std::runtime_error on failure.
[[nodiscard]] Fd connect_to(std::string_view address, std::uint16_t port);
// connect_to(), with sends bounded too: a send blocked for `send_timeout_ms` fails (SO_SNDTIMEO).
[[nodiscard]] Fd connect_to(std::uint16_t port, int send_timeout_ms);
// connect_to(port, send_timeout_ms) with a receive buffer of `rcvbuf_bytes`, set before connecting so that the TCP
// window stays small too: a client that reads slowly, or not at all, holds the server's output back.
[[nodiscard]] Fd connect_small_window(std::uint16_t port, int rcvbuf_bytes, int send_timeout_ms);
// The whole file at `path`, or "" if it cannot be read.
[[nodiscard]] std::string read_file(const std::string& path);
// Writes all of `data`; false if the peer closed or an error occurred.
bool send_all(const Fd& fd, std::string_view data);
// Reads one response from `fd`, waiting at most `timeout_ms` overall. Bytes read past the response are kept in
// `leftover` (pipelined responses) and consumed first by the next call.
[[nodiscard]] HttpResponse read_response(const Fd& fd, std::string& leftover, bool is_head_request = false,
                                         int timeout_ms = 10000);
[[nodiscard]] HttpResponse read_response(const Fd& fd, bool is_head_request = false, int timeout_ms = 10000);
// One request on a fresh connection, one response.
[[nodiscard]] HttpResponse request(std::uint16_t port, std::string_view raw_request, int timeout_ms = 10000);
// "GET target HTTP/1.1" with Host and Connection: close.
[[nodiscard]] HttpResponse get(std::uint16_t port, std::string_view target, int timeout_ms = 10000);
// True if the peer closed the connection (read returns 0 or ECONNRESET) within `timeout_ms`; data read before the
// close is discarded.
[[nodiscard]] bool wait_closed(const Fd& fd, int timeout_ms);
// Reads until the peer closes the connection (EOF or ECONNRESET) or `timeout_ms` passes, and returns `leftover`
// followed by every byte read, unparsed (for byte-exact checks, e.g. of an NPH script's response); `leftover` is
// left empty. `is_closed`, if given, tells whether the close came before the timeout.
[[nodiscard]] std::string read_until_close(const Fd& fd, std::string& leftover, int timeout_ms = 10000,
                                           bool* is_closed = nullptr);
// Reads into `buf` (bytes read earlier, kept) until it contains `marker`; false on close or timeout.
[[nodiscard]] bool read_until(const Fd& fd, std::string& buf, std::string_view marker, int timeout_ms = 10000);
// The local port of connected socket `fd`: the client port the server sees.
[[nodiscard]] std::uint16_t local_port(const Fd& fd);
// SELECT count(*) FROM `table` in the SQLite database `db` (opened read-write: a read-only connection cannot recover a
// WAL whose last writer has just gone), waiting up to 5 s on a lock. Throws std::runtime_error on any SQLite error.
[[nodiscard]] long long count_rows(const std::string& db, const char* table);
// The first column of the first row `sql` gives on the SQLite database `db` (opened read-write, as count_rows),
// as text ("" for no row or NULL), waiting up to `busy_ms` on a lock; "error: MESSAGE" on any SQLite error, so that
// it can be polled while another process is still changing the file.
[[nodiscard]] std::string query_text(const std::string& db, const std::string& sql, int busy_ms = 5000);
// Initialises `attr` to start a process as a shell would: an empty signal mask and default dispositions whatever
// the test runner inherited; with `new_group`, in a process group of its own. Destroy it with
// posix_spawnattr_destroy.
void init_shell_like_spawnattr(posix_spawnattr_t& attr, bool new_group);
// Polls `done` every 10 ms until it returns true or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// The value of the sample `series` (a metric's name and labels as the status page prints them, e.g.
// `spawnd_rejected_total{site="default",reason="queue"}`) in the status page text `page`; 0 if it is absent.
[[nodiscard]] double metric_sample(const std::string& page, std::string_view series);

// Sends SIGHUP to `s` and waits (up to 10 s) for the outcome line of reload number `count` in its error log (an
// info "reload: configuration N" or an "error: reload:"); false if it does not come.
bool hang_up_and_wait(Spawnd& s, int count);

// Where a test that ran spawnd ends: spawnd has reaped all its children (a child that just exited may be a zombie
// for an instant, until the loop reaps it, hence a poll of up to 5 s), exits 0 on SIGTERM, and its stderr has no
// sanitizer report (under the asan-ubsan preset, UBSan's recoverable ones included). Catch2 checks.
void check_clean_end(Spawnd& s);

}  // namespace spawnd::e2e
