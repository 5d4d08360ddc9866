#!/usr/bin/env python3
"""The soak: spawnd in all four modes under mixed, hostile load for a bounded time, then the checks.

    python3 tests/soak/soak.py [--build build/asan-ubsan] [--seconds 180] [--modes cgi,fork,fastcgi,inproc]

For each mode, concurrently, it starts the built spawnd on its own 127.0.0.1 port with its own temporary document
root, copy of the cgi-bin directory and SQLite database, warms it up, measures its idle file descriptors and child
processes, and then for --seconds runs the load from --clients threads:

  - keep-alive GETs of static files (a small one, a 4 MiB one) and of the handlers hello, env, guestbook, kv;
  - guestbook POSTs, with Content-Length and chunked, each carrying a unique marker in its message;
  - kv PUTs; pipelined requests (several requests in one write, answers read in order);
  - clients that disconnect mid-request (half a head, half a body; with a reset or with FIN) and mid-response
    (a few bytes of a large answer, then a reset or FIN); slow readers of the 4 MiB file;
  - bursts of --max-children + 4 handler requests at once, half of them reset or closed while they wait for a
    slot or run (--no-burst leaves them out);

while a killer thread SIGKILLs one of the mode's handler processes (CGI children, fork servers and their
children, FastCGI workers; inproc has none) every --kill-interval seconds, and the guestbook executable (and its
.so) is replaced on disk --deploys times, as a deploy does (copy to a temporary name in the same directory,
rename() over the original), after which the guestbook must answer GET 200 and POST 303 within 10 s.

Then, per mode, with the load stopped and a short settle, it checks (each failure is reported and makes the exit
status 1):

  - spawnd still answers a GET;
  - its open fds (/proc/PID/fd) are back to the idle baseline (taken after start-up and a short warm-up load);
  - no zombie among its descendants, and no handler process left beyond the persistent ones the mode had at the
    baseline (fork servers, FastCGI workers); in fork and fastcgi modes none still runs a replaced executable;
  - its RSS (VmRSS, sampled every second) averaged over the last minute is within 10 % of the first minute's
    average (windows of min(60 s, duration / 3); the load's clock starts after the warm-up);
  - on SIGTERM it exits with status 0;
  - every POST answered 303 is a row of the guestbook (read with sqlite3 once spawnd has exited), and
    PRAGMA integrity_check is ok;
  - no sanitizer report: no file in the ASan/LSan/UBSan log_path directory (spawnd and every handler process log
    there: spawnd passes ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS on to them with --pass-env) and no
    sanitizer line in spawnd's stderr.

The run directory ($TMPDIR/spawnd-soak-*: per mode the logs, database, fd lists and result.json) is removed when
every check passes, unless --keep.

Python's standard library only. Everything is bounded in time; every process it starts is stopped on every path.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from errno import ENOSYS, EPERM

MODES = ("cgi", "fork", "fastcgi", "inproc")
BIG_FILE = "big.bin"
BIG_SIZE = 4 * 1024 * 1024
SANITIZER_PATTERNS = re.compile(
    rb"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer"
    rb"|WARNING: AddressSanitizer|ThreadSanitizer"
)


def log(mode: str, msg: str) -> None:
    sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] {mode:8} {msg}\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------------------------------
# A small HTTP/1.1 client over raw sockets: exact control over what is sent, when, and how the connection ends.

class HttpError(Exception):
    """The server's answer was not a well-formed response (or the connection ended in the middle of one)."""


class Conn:
    def __init__(self, port: int, timeout: float = 20.0, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = bytearray()
        self.closed_by_peer = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self, reset: bool = False) -> None:
        if reset:  # SO_LINGER 0: close() sends RST, as wrk and impatient browsers do
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise HttpError("connection closed by the server in the middle of a response")
        self.buf += data

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > 65536:
                raise HttpError("header line too long")
            self._fill()

    def _take(self, n: int, keep: bool) -> bytes:
        out = bytearray()
        while n > 0:
            if not self.buf:
                self._fill()
            k = min(n, len(self.buf))
            if keep:
                out += self.buf[:k]
            del self.buf[:k]
            n -= k
        return bytes(out)

    def read_response(self, method: str = "GET", keep_body: bool = True):
        """Returns (status, headers {lower-case name: value}, body, body_length)."""
        try:
            status_line = self._line()
        except HttpError:
            if not self.buf:
                raise HttpError("connection closed before a response")
            raise
        m = re.match(rb"HTTP/1\.[01] (\d{3})", status_line)
        if not m:
            raise HttpError(f"bad status line {status_line[:80]!r}")
        status = int(m.group(1))
        headers: dict[str, str] = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if 100 <= status < 200:
            return self.read_response(method, keep_body)  # an interim response: the final one follows
        body = b""
        length = 0
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = self._line()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line():  # trailer fields
                        pass
                    break
                parts.append(self._take(size, keep_body))
                length += size
                if self._line() != b"":
                    raise HttpError("chunk not followed by CRLF")
            body = b"".join(parts)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = self._take(length, keep_body)
        else:  # delimited by the end of the connection
            parts = []
            while True:
                try:
                    self._fill()
                except HttpError:
                    break
                parts.append(bytes(self.buf))
                length += len(self.buf)
                self.buf.clear()
            body = b"".join(parts) if keep_body else b""
            self.closed_by_peer = True
        if headers.get("connection", "").lower() == "close":
            self.closed_by_peer = True
        return status, headers, body, length


def request_bytes(method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                  chunks: list[bytes] | None = None, close: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: spawnd-soak"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
    elif body is not None:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if chunks is not None:
        return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return head + (body or b"")


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# ----------------------------------------------------------------------------------------------------------------
# /proc helpers

def proc_children(pid: int) -> list[int]:
    """Direct children of every thread of `pid` (zombies included)."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def proc_descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, depth) of every descendant; depth 1 = a child."""
    out: list[tuple[int, int]] = []
    stack = [(c, 1) for c in proc_children(pid)]
    while stack:
        p, d = stack.pop()
        out.append((p, d))
        stack += [(c, d + 1) for c in proc_children(p)]
    return out


def proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def proc_ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def proc_exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


_KCMP = {"x86_64": 312, "aarch64": 272, "riscv64": 272, "i686": 349, "armv7l": 378}.get(platform.machine())
_libc = ctypes.CDLL(None, use_errno=True)


def shares_parent_memory(pid: int, ppid: int) -> bool:
    """True for a child created with CLONE_VM that has not exec'd: a sanitizer's StopTheWorld tracer, which a
    handler runs for its exit-time leak check. Killing that tracer leaves the handler spinning forever in
    LeakSanitizer (it waits for a flag the tracer never sets), which is the soak's doing, not the server's. Uses
    kcmp(KCMP_VM) where the syscall number is known, else whether the parent is being ptraced by `pid`."""
    if _KCMP is not None:
        r = _libc.syscall(_KCMP, pid, ppid, 1, 0, 0)  # KCMP_VM
        if r == 0:
            return True
        if r > 0 or ctypes.get_errno() not in (ENOSYS, EPERM):
            return False
    try:
        with open(f"/proc/{ppid}/status") as f:
            return any(line.startswith("TracerPid:") and int(line.split()[1]) == pid for line in f)
    except OSError:
        return False


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_list(pid: int) -> list[str]:
    out = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    return out


def unix_socket_fds(pid: int) -> int:
    """How many of `pid`'s fds are unix-domain sockets (their inodes are listed in /proc/net/unix)."""
    with open("/proc/net/unix") as f:
        inodes = {line.split()[6] for line in list(f)[1:] if len(line.split()) >= 7}
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n


def vm_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def processes_running_from(directory: str) -> list[tuple[int, str, str]]:
    """Every process on the machine whose executable lies in `directory`: (pid, exe, state). Catches orphans that
    were re-parented away from spawnd."""
    out = []
    prefix = directory.rstrip("/") + "/"
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        exe = proc_exe(int(name))
        if exe.startswith(prefix):
            out.append((int(name), exe, proc_state(int(name))))
    return out


# ----------------------------------------------------------------------------------------------------------------
# One mode's soak

class ModeSoak:
    def __init__(self, mode: str, args: argparse.Namespace, run_dir: str):
        self.mode = mode
        self.args = args
        self.dir = os.path.join(run_dir, mode)
        self.root = os.path.join(self.dir, "www")
        self.cgi_bin = os.path.join(self.dir, "cgi-bin")
        self.db = os.path.join(self.dir, "site.db")
        self.san_dir = os.path.join(self.dir, "sanitizer")
        self.stderr_path = os.path.join(self.dir, "spawnd.stderr")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.stop = threading.Event()
        self.interrupted = threading.Event()
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.statuses: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()  # connection errors by kind (a few examples)
        self.error_examples: list[str] = []
        self.markers_303: list[str] = []
        self.kills: collections.Counter = collections.Counter()
        self.killed_pids: set[int] = set()
        self.deploys: list[str] = []
        self.rss: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self.result: dict = {"mode": mode}
        self.t0 = 0.0
        self.seq = 0
        self.created = time.monotonic()
        self.timeline: list[str] = []

    # --- set-up ------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        os.makedirs(self.san_dir)
        shutil.copytree(self.args.www, self.root)
        with open(os.path.join(self.root, BIG_FILE), "wb") as f:
            f.write(random.Random(7).randbytes(BIG_SIZE))
        shutil.copytree(os.path.join(self.args.build, "cgi-bin"), self.cgi_bin, symlinks=True)

    def start(self) -> None:
        env = dict(os.environ)
        # One log_path for the three: in an asan+ubsan binary each of ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS
        # may set it, and the last one parsed wins. Reports land in sanitizer/report.PID.
        log_path = f"log_path={self.san_dir}/report"
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            "detect_leaks=1", log_path, f"quarantine_size_mb={self.args.quarantine_mb}",
            "thread_local_quarantine_size_kb=256", self.args.asan_extra]))
        env["LSAN_OPTIONS"] = log_path
        env["UBSAN_OPTIONS"] = f"print_stacktrace=1:{log_path}"
        cmd = [os.path.join(self.args.build, "spawnd"), "--listen", "127.0.0.1:0", "--root", self.root,
               "--cgi-bin", self.cgi_bin, "--db", self.db, "--mode", self.mode, "--quiet",
               "--pass-env", "ASAN_OPTIONS", "--pass-env", "UBSAN_OPTIONS", "--pass-env", "LSAN_OPTIONS",
               "--keepalive-timeout", "2", "--workers", str(self.args.workers),
               "--fork-servers", str(self.args.workers), "--max-children", str(self.args.max_children),
               "--shutdown-grace", "10"] + self.args.spawnd_arg
        self.cmd = cmd
        with open(self.stderr_path, "wb") as err, open(os.path.join(self.dir, "spawnd.stdout"), "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                         cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(self.stderr_path, "rb") as f:
                m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"spawnd exited at start-up with status {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError("spawnd did not print its listening line within 60 s")

    def simple(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
               timeout: float = 20.0):
        c = Conn(self.port, timeout=timeout)
        try:
            c.send(request_bytes(method, path, body, headers, close=True))
            return c.read_response(method)
        finally:
            c.close()

    def warm_up(self) -> None:
        """Every path the load uses answers as expected once; handlers get their fork servers / workers."""
        expect = [("GET", "/", None, None, 200), ("GET", "/style.css", None, None, 200),
                  ("GET", "/" + BIG_FILE, None, None, 200), ("GET", "/cgi-bin/hello", None, None, 200),
                  ("GET", "/cgi-bin/env", None, None, 200), ("GET", "/cgi-bin/guestbook", None, None, 200),
                  ("PUT", "/cgi-bin/kv/warm", b'{"warm":true}', {"Content-Type": "application/json"}, None),
                  ("GET", "/cgi-bin/kv/warm", None, None, 200)]
        for method, path, body, headers, want in expect:
            for attempt in range(50):  # fork servers and workers may still be starting (503/502 meanwhile)
                status = self.simple(method, path, body, headers)[0]
                if status < 500:
                    break
                time.sleep(0.2)
            if (want is not None and status != want) or status >= 400:
                raise RuntimeError(f"warm-up: {method} {path} answered {status}")
        marker = self.new_marker("warm")
        status = self.simple("POST", "/cgi-bin/guestbook", f"name=soak&message={marker}".encode(), FORM)[0]
        if status != 303:
            raise RuntimeError(f"warm-up: guestbook POST answered {status}")
        self.markers_303.append(marker)
        # Requests that arrive together, so that every FastCGI worker / in-process thread gets one: spawnd opens
        # its connection to a worker (and a thread its SQLite connection) on first use, and the idle baseline must
        # hold them all, or the first use during the load would look like a leaked fd.
        for path in ("/cgi-bin/hello", "/cgi-bin/env", "/cgi-bin/guestbook", "/cgi-bin/kv/warm"):
            conns = [Conn(self.port) for _ in range(2 * self.args.workers + 2)]
            try:
                for c in conns:
                    c.send(request_bytes("GET", path))
                for c in conns:
                    status = c.read_response("GET", keep_body=False)[0]
                    if status != 200:
                        raise RuntimeError(f"warm-up: concurrent GET {path} answered {status}")
            finally:
                for c in conns:
                    c.close()

    def new_marker(self, who: str) -> str:
        with self.lock:
            self.seq += 1
            n = self.seq
        return f"soak-{self.mode}-{who}-{n}-{random.getrandbits(32):08x}"

    def idle_grandchildren(self, children):
        """Grandchildren allowed at rest: in fork mode one pre-forked child waiting per fork server (the minimum of
        the --prefork pool), none in the other modes."""
        return len(children) if self.mode == "fork" else 0

    def idle_snapshot(self) -> tuple[int, list[tuple[int, int]]]:
        return fd_count(self.proc.pid), proc_descendants(self.proc.pid)

    def persistent_children(self) -> list[int]:
        return [p for p, d in proc_descendants(self.proc.pid) if d == 1]

    # --- load --------------------------------------------------------------------------------------------------

    def note(self, status: int | None, kind: str = "request") -> None:
        with self.lock:
            self.counts[kind] += 1
            if status is None:
                self.counts["conn_error"] += 1
            else:
                self.statuses[status] += 1
                self.counts[f"{status // 100}xx"] += 1

    def note_error(self, what: str, exc: BaseException) -> None:
        with self.lock:
            self.counts["request"] += 1
            self.counts["conn_error"] += 1
            key = f"{what}: {type(exc).__name__}"
            self.errors[key] += 1
            if len(self.error_examples) < 20:
                self.error_examples.append(f"{time.monotonic() - self.t0:7.1f}s {what}: {exc!r}")

    def note_post(self, status: int, marker: str) -> None:
        if status == 303:
            with self.lock:
                self.markers_303.append(marker)

    def post_body(self, who: str) -> tuple[bytes, str]:
        marker = self.new_marker(who)
        return f"name=soak+{who}&message={marker}".encode(), marker

    def on_one_connection(self, requests):
        """Sends each (label, method, raw request) of `requests` in turn on one keep-alive connection, reads its
        response, notes and yields its status. Stops at the first error (noted under `label`) or once the server
        has closed the connection."""
        c = Conn(self.port)
        try:
            for label, method, raw in requests:
                try:
                    c.send(raw)
                    status = c.read_response(method, keep_body=False)[0]
                except (OSError, HttpError) as e:
                    self.note_error(label, e)
                    return
                self.note(status)
                yield status
                if c.closed_by_peer:
                    return
        finally:
            c.close()

    def op_keepalive_gets(self, rng: random.Random, who: str) -> None:
        paths = ["/", "/style.css", "/index.html", "/cgi-bin/hello", "/cgi-bin/env", "/cgi-bin/guestbook",
                 f"/cgi-bin/kv/k{rng.randrange(50)}", "/cgi-bin/hello/extra?x=1"]

        def requests():
            for _ in range(rng.randint(2, 8)):
                if rng.random() < 0.08:
                    path, method = "/" + BIG_FILE, "GET"
                else:
                    path, method = rng.choice(paths), ("HEAD" if rng.random() < 0.1 else "GET")
                yield f"keep-alive {method} {path}", method, request_bytes(method, path)

        for _ in self.on_one_connection(requests()):
            pass

    def op_posts(self, rng: random.Random, who: str, chunked: bool) -> None:
        markers = []

        def requests():
            for _ in range(rng.randint(1, 3)):
                body, marker = self.post_body(who)
                markers.append(marker)
                if chunked:
                    cut = sorted(rng.sample(range(1, len(body)), 2))
                    req = request_bytes("POST", "/cgi-bin/guestbook", headers=FORM,
                                        chunks=[body[:cut[0]], body[cut[0]:cut[1]], body[cut[1]:]])
                else:
                    req = request_bytes("POST", "/cgi-bin/guestbook", body, FORM)
                yield ("chunked POST" if chunked else "POST"), "POST", req

        for i, status in enumerate(self.on_one_connection(requests())):
            self.note_post(status, markers[i])

    def op_kv(self, rng: random.Random, who: str) -> None:
        key = f"k{rng.randrange(50)}"
        body = json.dumps({"who": who, "n": rng.randrange(10**6)}).encode()
        requests = [(f"kv {method}", method, request_bytes(method, f"/cgi-bin/kv/{key}", data,
                                                           {"Content-Type": "application/json"} if data else None))
                    for method, data in (("PUT", body), ("GET", None))]
        for _ in self.on_one_connection(requests):
            pass

    def op_pipelined(self, rng: random.Random, who: str) -> None:
        reqs = []
        for _ in range(rng.randint(3, 6)):
            r = rng.random()
            if r < 0.3:
                reqs.append(("GET", rng.choice(["/", "/style.css"]), None, None))
            elif r < 0.6:
                reqs.append(("GET", rng.choice(["/cgi-bin/hello", "/cgi-bin/env"]), None, None))
            else:
                body, marker = self.post_body(who + "p")
                reqs.append(("POST", "/cgi-bin/guestbook", body, marker))
        c = Conn(self.port)
        try:
            c.send(b"".join(request_bytes(m, p, b, FORM if b else None) for m, p, b, _ in reqs))
            for method, path, _, marker in reqs:
                try:
                    status = c.read_response(method, keep_body=False)[0]
                except (OSError, HttpError) as e:
                    self.note_error(f"pipelined {method} {path}", e)
                    return
                self.note(status)
                if marker:
                    self.note_post(status, marker)
                if c.closed_by_peer:
                    return
        except OSError as e:
            self.note_error("pipelined send", e)
        finally:
            c.close()

    def op_abort_request(self, rng: random.Random, who: str) -> None:
        """Half a head, or a whole head and half a body, then a reset or a FIN."""
        reset = rng.random() < 0.5
        shape = rng.randrange(4)
        if shape == 0:
            data = request_bytes("GET", rng.choice(["/cgi-bin/guestbook", "/cgi-bin/hello", "/"]))
            data = data[: rng.randrange(1, len(data) - 2)]
        elif shape == 1:  # Content-Length body cut short: the server never gets all of it
            body, _ = self.post_body(who + "x")
            body += b"&pad=" + b"p" * 400
            data = request_bytes("POST", "/cgi-bin/guestbook", body, FORM)
            data = data[: len(data) - rng.randrange(1, len(body))]
        elif shape == 2:  # chunked body without its last chunk
            body, _ = self.post_body(who + "x")
            data = request_bytes("POST", "/cgi-bin/guestbook", headers=FORM, chunks=[body])
            data = data[: len(data) - rng.randrange(5, 12)]
        else:  # a kv PUT cut short
            data = request_bytes("PUT", "/cgi-bin/kv/cut", b'{"cut": "' + b"x" * 300 + b'"}',
                                 {"Content-Type": "application/json"})
            data = data[: len(data) - rng.randrange(1, 200)]
        try:
            c = Conn(self.port)
        except OSError as e:
            self.note_error("connect", e)
            return
        try:
            c.send(data)
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 0.05))  # let the server start on it
        except OSError:
            pass
        c.close(reset=reset)
        with self.lock:
            self.counts["abort_mid_request_rst" if reset else "abort_mid_request_fin"] += 1

    def op_abort_response(self, rng: random.Random, who: str) -> None:
        """A large answer (the 4 MiB file, or a guestbook page), a few bytes of it read, then a reset or a FIN."""
        reset = rng.random() < 0.5
        path = rng.choice(["/" + BIG_FILE, "/" + BIG_FILE, "/cgi-bin/guestbook", "/cgi-bin/env"])
        try:
            c = Conn(self.port, rcvbuf=8192)
            c.send(request_bytes("GET", path))
            c.sock.recv(rng.randint(1, 4096))
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 0.05))
        except OSError as e:
            self.note_error(f"abort-response GET {path}", e)
            return
        c.close(reset=reset)
        with self.lock:
            self.counts["abort_mid_response_rst" if reset else "abort_mid_response_fin"] += 1

    def op_slow_reader(self, rng: random.Random, who: str) -> None:
        """The 4 MiB file read 32 KiB at a time with pauses: every byte must arrive."""
        try:
            c = Conn(self.port, rcvbuf=16384)
        except OSError as e:
            self.note_error("connect", e)
            return
        try:
            c.send(request_bytes("GET", "/" + BIG_FILE))
            c._fill()
            while b"\r\n\r\n" not in c.buf:
                c._fill()
            head_end = c.buf.index(b"\r\n\r\n") + 4
            m = re.search(rb"(?i)content-length: *(\d+)", c.buf[:head_end])
            status = int(c.buf[9:12])
            want = int(m.group(1)) if m else -1
            got = len(c.buf) - head_end
            c.buf.clear()
            pause = rng.uniform(0.005, 0.03)
            while got < want and not self.stop.is_set():
                data = c.sock.recv(32768)
                if not data:
                    raise HttpError(f"slow reader: connection closed after {got} of {want} bytes")
                got += len(data)
                time.sleep(pause)
            if got < want:  # stopped: leave as an aborted response
                c.close(reset=True)
                with self.lock:
                    self.counts["abort_mid_response_rst"] += 1
                return
            if got != want:
                raise HttpError(f"slow reader: {got} bytes for Content-Length {want}")
            self.note(status)
            with self.lock:
                self.counts["slow_reader_complete"] += 1
        except (OSError, HttpError) as e:
            self.note_error("slow reader", e)
        finally:
            c.close()

    def op_burst(self, rng: random.Random, who: str) -> None:
        """More handler requests at once than spawnd has slots (--max-children + 4), so that some wait in its
        queue; half of the connections are then reset or closed while their request waits or runs, the others
        read their answer."""
        conns = []
        try:
            for i in range(self.args.max_children + 4):
                c = Conn(self.port)
                conns.append(c)
                if rng.random() < 0.5:
                    body, marker = self.post_body(who + "b")
                    c.send(request_bytes("POST", "/cgi-bin/guestbook", body, FORM))
                    c.marker = marker
                else:
                    c.send(request_bytes("GET", rng.choice(["/cgi-bin/hello", "/cgi-bin/guestbook"])))
                    c.marker = None
            time.sleep(rng.uniform(0.0, 0.02))
            rng.shuffle(conns)
            half = len(conns) // 2
            for c in conns[:half]:
                c.close(reset=rng.random() < 0.7)
            with self.lock:
                self.counts["abort_queued"] += half
            for c in conns[half:]:
                method = "POST" if c.marker else "GET"
                try:
                    status = c.read_response(method, keep_body=False)[0]
                except (OSError, HttpError) as e:
                    self.note_error(f"burst {method}", e)
                    continue
                self.note(status)
                if c.marker:
                    self.note_post(status, c.marker)
        finally:
            for c in conns:
                c.close()

    def client(self, n: int) -> None:
        rng = random.Random(f"{self.mode}-{n}-{os.getpid()}")
        who = f"c{n}"
        ops = [(self.op_keepalive_gets, 30), (lambda r, w: self.op_posts(r, w, False), 20),
               (lambda r, w: self.op_posts(r, w, True), 8), (self.op_kv, 6), (self.op_pipelined, 8),
               (self.op_abort_request, 8), (self.op_abort_response, 7), (self.op_slow_reader, 2)]
        if self.args.burst:
            ops.append((self.op_burst, 2))
        funcs = [f for f, _ in ops]
        weights = [w for _, w in ops]
        while not self.stop.is_set():
            op = rng.choices(funcs, weights)[0]
            try:
                op(rng, who)
            except OSError as e:  # connect() refused or timed out
                self.note_error("connect", e)
                time.sleep(0.05)
            except Exception as e:  # a bug of the soak itself: report it, do not hide it
                with self.lock:
                    self.failures.append(f"client {n} crashed: {traceback.format_exc()}")
                return
            if self.args.think_ms:
                time.sleep(self.args.think_ms / 1000)

    def killer(self) -> None:
        """SIGKILLs one handler process of this mode every --kill-interval seconds."""
        rng = random.Random(f"killer-{self.mode}")
        spawnd = self.proc.pid
        max_depth = 2 if self.mode == "fork" else 1
        while not self.stop.wait(self.args.kill_interval * rng.uniform(0.5, 1.5)):
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not self.stop.is_set():
                # Handler processes only: a CGI child or FastCGI worker (depth 1), a fork server (1) or its child (2);
                # never LeakSanitizer's tracer of a handler that is exiting (deeper, or sharing its parent's memory):
                # killing it would hang the handler in its exit, which is not what a crash looks like.
                victims = [(p, d) for p, d in proc_descendants(spawnd)
                           if d <= max_depth and proc_exe(p).startswith(self.cgi_bin + "/")
                           and proc_state(p) not in ("Z", "X", "?")
                           and not (d > 1 and shares_parent_memory(p, proc_ppid(p)))]
                if victims:
                    pid, depth = rng.choice(victims)
                    kind = {"fork": {1: "fork server", 2: "fork child"}, "fastcgi": {1: "FastCGI worker"},
                            "cgi": {1: "CGI child"}}.get(self.mode, {}).get(depth, f"depth-{depth} process")
                    try:
                        os.kill(pid, signal.SIGKILL)
                        with self.lock:
                            self.kills[kind] += 1
                            self.killed_pids.add(pid)
                    except ProcessLookupError:
                        continue
                    break
                time.sleep(0.01)

    def deploy(self) -> None:
        """Replaces the guestbook on disk --deploys times, evenly spread (1/3 and 2/3 of the run for the default
        2); after each, it must answer GET 200 and POST 303 within 10 s."""
        n = self.args.deploys
        for frac in [(i + 1) / (n + 1) for i in range(n)]:
            if self.stop.wait(max(0.0, self.t0 + self.args.seconds * frac - time.monotonic())):
                return
            for name in ("guestbook", "guestbook.so"):
                src = os.path.join(self.cgi_bin, name)
                if not os.path.exists(src):
                    continue
                tmp = os.path.join(self.cgi_bin, f".{name}.deploy-{os.getpid()}")
                shutil.copy2(src, tmp)
                os.utime(tmp)  # a new build: new inode, new mtime
                os.rename(tmp, src)
            t = time.monotonic()
            ok = None
            while time.monotonic() - t < 10 and not self.stop.is_set():
                try:
                    get = self.simple("GET", "/cgi-bin/guestbook", timeout=10)[0]
                    body, marker = self.post_body("deploy")
                    post = self.simple("POST", "/cgi-bin/guestbook", body, FORM, timeout=10)[0]
                    self.note(get)
                    self.note(post)
                    self.note_post(post, marker)
                    if get == 200 and post == 303:
                        ok = time.monotonic() - t
                        break
                except (OSError, HttpError):
                    pass
                time.sleep(0.2)
            at = time.monotonic() - self.t0
            if ok is None:
                self.failures.append(f"the guestbook replaced on disk at {at:.0f}s did not answer GET 200 and "
                                     f"POST 303 within 10 s")
                self.deploys.append(f"{at:.0f}s: FAILED")
            else:
                self.deploys.append(f"{at:.0f}s: serving again after {ok:.2f}s")
                log(self.mode, f"guestbook replaced on disk; serving again after {ok:.2f}s")

    def sampler(self) -> None:
        while not self.stop.is_set():
            kb = vm_rss_kb(self.proc.pid)
            if kb is not None:
                self.rss.append((time.monotonic() - self.t0, kb))
            self.stop.wait(1.0)

    # --- the run and its checks --------------------------------------------------------------------------------

    def mark(self, what: str) -> None:
        self.timeline.append(f"{what} {time.monotonic() - self.created:.1f}s")

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        log(self.mode, "FAIL: " + msg)

    def run(self) -> dict:
        try:
            self.prepare()
            self.start()
            log(self.mode, f"spawnd pid {self.proc.pid} on 127.0.0.1:{self.port}")
            self.mark("listening")
            self.warm_up()
            self.mark("warm-up requests")
            # A short spell of the same load (no kills, no deploy), so that every worker has its connection and
            # the allocator its working set before the idle baseline is taken.
            warm = min(10.0, self.args.seconds / 6)
            self.t0 = time.monotonic()
            clients = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(self.args.clients)]
            for t in clients:
                t.start()
            self.interrupted.wait(warm)
            self.stop.set()
            for t in clients:
                t.join(timeout=30)
            self.mark("warm-up load")
            if self.interrupted.is_set():
                raise RuntimeError("interrupted")
            with self.lock:
                self.result["warm_up"] = {"seconds": round(warm, 1), "requests": self.counts["request"],
                                          "posts_303": len(self.markers_303)}
                self.counts.clear()
                self.statuses.clear()
                self.errors.clear()
                self.error_examples.clear()
            self.stop = threading.Event()
            # Idle: longer than --keepalive-timeout, so the warm-up's connections are closed.
            time.sleep(self.args.settle_idle)
            base_fds, base_desc = self.idle_snapshot()
            self.base_unix = unix_socket_fds(self.proc.pid)
            self.mark("baseline")
            self.base_fd_list = fd_list(self.proc.pid)
            with open(os.path.join(self.dir, "fds-baseline.txt"), "w") as f:
                f.write("\n".join(self.base_fd_list) + "\n")
            base_children = [p for p, d in base_desc if d == 1]
            self.result["fd_baseline"] = base_fds
            self.result["persistent_children"] = len(base_children)
            log(self.mode, f"idle baseline after {warm:.0f} s of warm-up: {base_fds} fds, {len(base_children)} "
                           f"persistent children, {len(base_desc)} descendants")
            # Fork mode at rest: each fork server keeps its --prefork pool's minimum, one waiting child (fork_protocol.h).
            if len(base_desc) - len(base_children) > self.idle_grandchildren(base_children):
                self.fail(f"at the baseline spawnd has {len(base_desc) - len(base_children)} grandchildren")

            self.t0 = time.monotonic()
            log(self.mode, f"load for {self.args.seconds} s")
            threads = [threading.Thread(target=self.sampler, daemon=True),
                       threading.Thread(target=self.deploy, daemon=True)]
            if self.mode != "inproc" and self.args.kill_interval > 0:
                threads.append(threading.Thread(target=self.killer, daemon=True))
            threads += [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(self.args.clients)]
            for t in threads:
                t.start()
            next_report = self.t0 + 30
            while time.monotonic() - self.t0 < self.args.seconds and not self.interrupted.is_set():
                time.sleep(0.5)
                if self.proc.poll() is not None:
                    self.fail(f"spawnd died during the load (status {self.proc.returncode})")
                    break
                if time.monotonic() >= next_report:
                    next_report += 30
                    with self.lock:
                        c = dict(self.counts)
                    log(self.mode, f"{time.monotonic() - self.t0:5.0f}s: {c.get('request', 0)} requests, "
                                   f"{len(self.markers_303)} POSTs answered 303, kills {sum(self.kills.values())}, "
                                   f"RSS {self.rss[-1][1] // 1024 if self.rss else 0} MiB, "
                                   f"fds {fd_count(self.proc.pid)}")
            self.stop.set()
            for t in threads:
                t.join(timeout=30)
                if t.is_alive():
                    self.fail(f"a load thread ({t.name}) did not stop within 30 s")
            self.mark("load")
            load_seconds = time.monotonic() - self.t0
            self.result["load_seconds"] = round(load_seconds, 1)
            if self.proc.poll() is None:
                self.check_idle(base_fds, base_children)
                self.mark("settle")
                self.check_rss()
                self.check_serves()
                self.stop_server()
                self.mark("exit")
            self.check_rows()
            self.check_sanitizers()
        except Exception:
            self.fail("the soak itself failed: " + traceback.format_exc())
        finally:
            if self.proc and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            for pid, exe, _ in processes_running_from(self.cgi_bin):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        with self.lock:
            self.result.update({
                "counts": dict(self.counts), "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "errors": dict(self.errors), "error_examples": self.error_examples,
                "kills": dict(self.kills), "deploys": self.deploys, "failures": self.failures,
                "posts_303": len(self.markers_303),
                "timeline": self.timeline,
                "rss_samples_kib": [[round(t, 1), kb] for t, kb in self.rss],
            })
        return self.result

    def check_idle(self, base_fds: int, base_children: list[int]) -> None:
        """After a settle: fds back to the baseline, the mode's persistent children only, no zombies.

        FastCGI mode keeps one unix socket per worker, opened on the worker's first request and again after a
        connection was dropped (a worker restarted, a request aborted): how many are open at a given idle moment
        depends on history. So there its unix sockets are held to at most one per worker, and its other fds to the
        baseline; in the other modes every fd is held to the baseline."""
        pid = self.proc.pid
        fastcgi = self.mode == "fastcgi"
        deadline = time.monotonic() + self.args.settle_seconds
        while True:
            fds = fd_count(pid)
            unix = unix_socket_fds(pid) if fastcgi else 0
            base_other = base_fds - (self.base_unix if fastcgi else 0)
            fds_ok = (fds - unix <= base_other and unix <= len(base_children)) if fastcgi else fds <= base_fds
            desc = proc_descendants(pid)
            children = [p for p, d in desc if d == 1]
            zombies = [p for p, _ in desc if proc_state(p) == "Z"]
            stale = ([p for p, _ in desc if proc_exe(p).endswith(" (deleted)")]
                     if self.mode in ("fork", "fastcgi") else [])
            strays = [p for p, e, _ in processes_running_from(self.cgi_bin) if p not in dict(desc)]
            ok = (fds_ok and len(children) == len(base_children) and len(desc) == len(children)
                  and not zombies and not stale and not strays)
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.result["fd_end"] = fds
        if fastcgi:
            self.result["worker_sockets"] = f"{self.base_unix}/{unix} of {len(base_children)}"
        with open(os.path.join(self.dir, "fds-end.txt"), "w") as f:
            f.write("\n".join(fd_list(pid)) + "\n")
        self.result["children_end"] = len(children)
        if not fds_ok:
            now = fd_list(pid)
            what = (f"{fds - unix} fds besides {unix} worker sockets after the settle, {base_other} at the idle "
                    f"baseline (at most {len(base_children)} worker sockets)" if fastcgi else
                    f"{fds} open fds after the settle, {base_fds} at the idle baseline")
            self.fail(f"{what}; now open and not at the baseline:\n    "
                      + "\n    ".join(l for l in now if l not in self.base_fd_list))
        if len(children) != len(base_children):
            self.fail(f"{len(children)} child processes after the settle, {len(base_children)} at the baseline "
                      f"(the mode's persistent ones): "
                      + ", ".join(f"{p} {proc_exe(p)} [{proc_state(p)}]" for p in children))
        if len(desc) - len(children) > self.idle_grandchildren(children):
            self.fail(f"{len(desc) - len(children)} grandchildren left: "
                      + ", ".join(f"{p} {proc_exe(p)} [{proc_state(p)}]" for p, d in desc if d > 1))
        if zombies:
            self.fail(f"zombies among spawnd's descendants: {zombies}")
        if stale:
            self.fail(f"processes still running a replaced executable: "
                      + ", ".join(f"{p} {proc_exe(p)}" for p in stale))
        if strays:
            self.fail(f"handler processes outside spawnd's tree (orphans): {strays}")

    def check_rss(self) -> None:
        s = self.args.seconds
        warm = 0.0  # the warm-up ran before the load's clock started
        window = min(60.0, s / 3)
        first = [kb for t, kb in self.rss if warm <= t < warm + window]
        last = [kb for t, kb in self.rss if s - window <= t <= s]
        if not first or not last:
            self.fail(f"too few RSS samples ({len(self.rss)})")
            return
        a = sum(first) / len(first)
        b = sum(last) / len(last)
        self.result["rss_first_mib"] = round(a / 1024, 1)
        self.result["rss_last_mib"] = round(b / 1024, 1)
        self.result["rss_change_pct"] = round((b - a) / a * 100, 1)
        self.result["rss_windows"] = f"[{warm:.0f},{warm + window:.0f})s vs [{s - window:.0f},{s:.0f}]s"
        if abs(b - a) > 0.10 * a:
            self.fail(f"RSS averaged {b / 1024:.1f} MiB over the last {window:.0f} s, {a / 1024:.1f} MiB over the "
                      f"first: {(b - a) / a * 100:+.1f} % (more than 10 %)")

    def check_serves(self) -> None:
        for path in ("/", "/cgi-bin/hello"):
            try:
                status = self.simple("GET", path, timeout=10)[0]
            except (OSError, HttpError) as e:
                self.fail(f"after the load, GET {path} failed: {e!r}")
                continue
            if status != 200:
                self.fail(f"after the load, GET {path} answered {status}")

    def stop_server(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("spawnd did not exit within 60 s of SIGTERM")
            return
        self.result["exit_status"] = status
        if status != 0:
            self.fail(f"spawnd exited with status {status} after SIGTERM")
        time.sleep(0.5)  # processes it stopped at exit may still be writing their logs

    def check_rows(self) -> None:
        if not os.path.exists(self.db):
            self.fail("no database file")
            return
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            rows = {m for (m,) in con.execute("SELECT message FROM guestbook")}
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            con.close()
        missing = [m for m in self.markers_303 if m not in rows]
        self.result["posts_verified"] = len(self.markers_303) - len(missing)
        self.result["rows"] = len(rows)
        if missing:
            self.fail(f"{len(missing)} of {len(self.markers_303)} POSTs answered 303 are not rows, e.g. {missing[:3]}")
        if integrity != "ok":
            self.fail(f"PRAGMA integrity_check: {integrity}")

    def check_sanitizers(self) -> None:
        """Every non-empty file in the log_path directory is a report, with one exception: LeakSanitizer's tracer
        saying it could not read the registers of a thread of a process this soak SIGKILLed while the process ran
        its exit-time leak check (the kill's doing, not a finding; it is listed as a note)."""
        reports, notes = [], []
        benign = re.compile(r"^==\d+==Unable to get registers from thread (\d+)\.$")
        for name in sorted(os.listdir(self.san_dir)):
            path = os.path.join(self.san_dir, name)
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            lines = [l for l in text.splitlines() if l.strip()]
            if not lines:
                continue
            if all((m := benign.match(l)) and int(m.group(1)) in self.killed_pids for l in lines):
                notes.append(f"{name}: {lines[0]} (a process this soak SIGKILLed during its leak check)")
            else:
                reports.append((path, lines))
        with open(self.stderr_path, "rb") as f:
            err = f.read()
        stderr_lines = [l for l in err.splitlines() if SANITIZER_PATTERNS.search(l)]
        self.result["sanitizer_reports"] = [p for p, _ in reports]
        self.result["sanitizer_notes"] = notes
        if reports:
            excerpt = []
            for path, text in reports[:4]:
                key = [l for l in text if re.search(r"ERROR:|SUMMARY:|runtime error|^    #[0-9]+ |^\S.*(freed|allocated|is located) ", l)][:24]
                excerpt.append(f"  {path}:\n      " + "\n      ".join(key or text[:12]))
            self.fail(f"{len(reports)} sanitizer report(s):\n" + "\n".join(excerpt))
        if stderr_lines:
            self.fail("sanitizer lines in spawnd's stderr:\n      "
                      + "\n      ".join(l.decode("utf-8", "replace") for l in stderr_lines[:10]))


# ----------------------------------------------------------------------------------------------------------------

def run_one(args: argparse.Namespace) -> int:
    soak = ModeSoak(args.one_mode, args, args.run_dir)
    def stop_now(*_):
        soak.interrupted.set()
        soak.stop.set()
    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)  # Ctrl-C reaches the whole process group: stop, check, clean up
    result = soak.run()
    with open(os.path.join(soak.dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 1 if result["failures"] else 0


def report(results: list[dict], seconds: int) -> None:
    print()
    print(f"soak: {seconds} s of load per mode, all modes concurrently (requests and outcomes count that load; "
          f"'POSTs 303' and 'verified' include the warm-up's)")
    hdr = ("mode", "requests", "2xx", "3xx", "4xx", "5xx", "conn err", "aborted", "POSTs 303", "verified",
           "kills", "fds base/end", "RSS first→last MiB")
    rows = []
    for r in results:
        c = r.get("counts", {})
        aborted = sum(v for k, v in c.items() if k.startswith("abort_"))
        rows.append((r["mode"], c.get("request", 0), c.get("2xx", 0), c.get("3xx", 0), c.get("4xx", 0),
                     c.get("5xx", 0), c.get("conn_error", 0), aborted, r.get("posts_303", 0),
                     r.get("posts_verified", "-"), sum(r.get("kills", {}).values()),
                     f"{r.get('fd_baseline', '-')}/{r.get('fd_end', '-')}",
                     f"{r.get('rss_first_mib', '-')}→{r.get('rss_last_mib', '-')} ({r.get('rss_change_pct', '-')} %)"))
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    for row in [hdr] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))
    for r in results:
        extra = [f"statuses {r.get('statuses', {})}"]
        if r.get("kills"):
            extra.append("killed " + ", ".join(f"{v} {k}" for k, v in r["kills"].items()))
        if r.get("deploys"):
            extra.append("deploys " + "; ".join(r["deploys"]))
        if r.get("errors"):
            extra.append("conn errors " + ", ".join(f"{v} {k}" for k, v in r["errors"].items()))
        if r.get("worker_sockets"):
            extra.append(f"FastCGI worker sockets at baseline/end {r['worker_sockets']}")
        if r.get("sanitizer_notes"):
            extra.append("sanitizer notes (not reports) " + "; ".join(r["sanitizer_notes"]))
        print(f"  {r['mode']}: " + " | ".join(extra))


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.normpath(os.path.join(here, "..", ".."))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(top, "build", "asan-ubsan"),
                   help="build directory holding spawnd and cgi-bin/ (default: build/asan-ubsan)")
    p.add_argument("--www", default=os.path.join(top, "www"), help="static site copied into each mode's root")
    p.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "180")),
                   help="load duration per mode (all modes run concurrently); default $SOAK_SECONDS or 180")
    p.add_argument("--modes", default="cgi,fork,fastcgi,inproc", help="comma-separated (default: all four)")
    p.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", "3")),
                   help="client threads per mode (default $SOAK_CLIENTS or 3)")
    p.add_argument("--think-ms", type=float, default=0.0, help="pause of each client between operations")
    p.add_argument("--kill-interval", type=float, default=2.0,
                   help="seconds between SIGKILLs of a handler process (0: none)")
    p.add_argument("--no-burst", dest="burst", action="store_false",
                   help="leave out the bursts of more handler requests than --max-children, half of them reset")
    p.add_argument("--deploys", type=int, default=2,
                   help="times the guestbook (executable and .so) is replaced on disk during the load (default 2)")
    p.add_argument("--workers", type=int, default=2, help="--workers and --fork-servers given to spawnd")
    p.add_argument("--max-children", type=int, default=8, help="--max-children given to spawnd")
    p.add_argument("--quarantine-mb", type=int, default=2,
                   help="ASan's quarantine of freed memory, MiB (default 2, and 256 KiB per thread: ASan's own 256 "
                        "MiB fills for minutes at these rates and would be the RSS growth measured; 2 MiB still "
                        "holds what was freed in the same event-loop iteration)")
    p.add_argument("--asan-extra", default="", help="more ASAN_OPTIONS, ':'-separated")
    p.add_argument("--spawnd-arg", action="append", default=[], help="one more argument for spawnd (repeatable; write --spawnd-arg=--flag=value)")
    p.add_argument("--settle-idle", type=float, default=3.0,
                   help="idle pause before the baseline is taken (longer than spawnd's --keepalive-timeout 2)")
    p.add_argument("--settle-seconds", type=float, default=20.0,
                   help="how long the fds and children may take to come back to the baseline after the load")
    p.add_argument("--keep", action="store_true", help="keep the run directory even when every check passes")
    p.add_argument("--one-mode", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.build = os.path.abspath(args.build)
    args.www = os.path.abspath(args.www)

    if args.one_mode:
        return run_one(args)

    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}")
    spawnd = os.path.join(args.build, "spawnd")
    if not os.access(spawnd, os.X_OK) or not os.path.isdir(os.path.join(args.build, "cgi-bin")):
        print(f"soak: no {spawnd} (or its cgi-bin/): build it first (make soak does)", file=sys.stderr)
        return 2
    run_dir = tempfile.mkdtemp(prefix="spawnd-soak-")
    started = time.monotonic()
    print(f"soak: {', '.join(modes)} for {args.seconds} s each, concurrently, {args.clients} clients per mode; "
          f"spawnd from {args.build}; run directory {run_dir}")
    passthrough = [a for a in sys.argv[1:]]
    children = {m: subprocess.Popen([sys.executable, os.path.abspath(__file__), *passthrough, "--one-mode", m,
                                     "--run-dir", run_dir, "--seconds", str(args.seconds),
                                     "--build", args.build, "--www", args.www]) for m in modes}

    def forward(sig, _frame):
        for c in children.values():
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    results = []
    bad = False
    for m, c in children.items():
        rc = c.wait()
        path = os.path.join(run_dir, m, "result.json")
        if os.path.exists(path):
            with open(path) as f:
                results.append(json.load(f))
        else:
            results.append({"mode": m, "failures": [f"the {m} runner exited with status {rc} and no result"]})
        bad |= rc != 0
    report(results, args.seconds)
    print(f"wall time {time.monotonic() - started:.0f} s")
    failures = [(r["mode"], f) for r in results for f in r.get("failures", [])]
    print()
    if failures or bad:
        print(f"soak FAILED ({len(failures)} failure(s)); logs and databases kept in {run_dir}:")
        for m, f in failures:
            print(f"  {m}: {f}")
        return 1
    print("soak passed: no sanitizer report, every POST answered 303 is a row, fds and children back to the "
          "baseline, no zombie, RSS steady, clean exit on SIGTERM")
    if args.keep:
        print(f"run directory kept: {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
