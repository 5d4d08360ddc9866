#!/usr/bin/env python3
"""Measures spawnd's resident memory (VmRSS) under the client shapes that could exhaust it (issue 20, part 3).

    scripts/measure-memory.py [--spawnd build/release/spawnd] [--shape all|chunked|slow-readers|pipelined]

Each shape runs against a fresh spawnd on 127.0.0.1 (port 0), CGI programs from tests/cgi, and prints spawnd's
VmRSS at start, its peak while the shape runs (sampled every 50 ms), and how long a concurrent GET of a static file
took at the peak. Shapes:
  chunked       100 connections each send 16 MiB of chunked request body to a CGI, never the last chunk
  slow-readers  200 connections each ask for a 10 MiB static file and 100 for 4 MiB of CGI output, and read nothing
  pipelined     500 connections each pipeline 1 MiB of GET requests and read nothing
Loopback only; bounded in time (about a minute per shape). Not a test: it prints figures for README and notes.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Spawnd:
    def __init__(self, binary, root, extra):
        args = [binary, "--listen", "127.0.0.1:0", "--root", root, "--cgi-bin", os.path.join(ROOT, "tests/cgi"),
                "--quiet", "--max-connections", "2048"] + extra
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        line = self.proc.stderr.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"spawnd did not start: {line}")
        self.port = int(m.group(1))
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s


def timed_get(port, path="/small.txt"):
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b" ", 2)[1].decode() if data else "none", (time.monotonic() - start) * 1000


class Sampler:
    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except OSError:
                return
            time.sleep(0.05)

    def finish(self):
        self.stop = True
        self.thread.join()
        return self.peak


def shape_chunked(server):
    piece = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    socks = []
    for _ in range(100):
        s = connect(server.port)
        s.sendall(b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        socks.append(s)
    refused = 0

    def send_all(s):
        nonlocal refused
        try:
            for _ in range(16 * 1024 * 1024 // 65536):
                s.sendall(piece)
        except OSError:
            pass  # answered 503 (the buffers' global limit) and closed

    threads = [threading.Thread(target=send_all, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    status, ms = timed_get(server.port)
    for s in socks:
        s.settimeout(0.2)
        try:
            if s.recv(64).startswith(b"HTTP/1.1 503"):
                refused += 1
        except OSError:
            pass
        s.close()
    return f"connections answered 503 at the global limit: {refused}; concurrent GET: {status} in {ms:.1f} ms"


def hold_and_probe(server, socks):
    """Lets the connections settle for 5 s, times a concurrent GET, then closes them."""
    time.sleep(5)
    status, ms = timed_get(server.port)
    for s in socks:
        s.close()
    return f"concurrent GET: {status} in {ms:.1f} ms"


def shape_slow_readers(server):
    socks = []
    for i in range(300):
        s = connect(server.port)
        path = "/big.bin" if i < 200 else "/cgi-bin/big-output.py"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(s)
    return hold_and_probe(server, socks)


def shape_pipelined(server):
    request = b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    batch = request * (1024 * 1024 // len(request))
    socks = []
    for _ in range(500):
        s = connect(server.port)
        s.setblocking(False)
        try:
            s.send(batch)
        except BlockingIOError:
            pass
        socks.append(s)
    return hold_and_probe(server, socks)


SHAPES = {"chunked": shape_chunked, "slow-readers": shape_slow_readers, "pipelined": shape_pipelined}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spawnd", default=os.path.join(ROOT, "build/release/spawnd"))
    ap.add_argument("--shape", default="all", choices=["all"] + list(SHAPES))
    ap.add_argument("spawnd_args", nargs="*", help="more spawnd flags (after --)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "small.txt"), "w") as f:
            f.write("small\n")
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(os.urandom(10 * 1024 * 1024))
        for name, fn in SHAPES.items():
            if opts.shape not in ("all", name):
                continue
            server = Spawnd(opts.spawnd, root, opts.spawnd_args)
            before = rss_kib(server.proc.pid)
            sampler = Sampler(server.proc.pid)
            detail = fn(server)
            peak = sampler.finish()
            server.stop()
            print(f"{name:13s} VmRSS at start {before / 1024:6.1f} MiB, peak {peak / 1024:6.1f} MiB; {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
