#!/usr/bin/python3
# tests/fastcgi/bad_app.py — a scripted FastCGI responder (FastCGI 1.0) for the end-to-end tests of
# `spawnd --fastcgi-pass` (tests/e2e/test_fastcgi_pass.cpp). Standard library only.
#
#   python3 bad_app.py SOCKET_PATH STATE_DIR
#
# Listens on the unix socket SOCKET_PATH and serves every connection in a thread of its own, one request at a time
# (no multiplexing; FCGI_KEEP_CONN honoured unless a mode says otherwise). Strict as php-fpm is: a connection whose
# next request does not start with FCGI_BEGIN_REQUEST (a stray FCGI_ABORT_REQUEST, say) is closed. What it does with a request is chosen by
# the last segment of SCRIPT_NAME (with `--fastcgi-pass /bad/=unix:SOCK@DIR`, "/bad/MODE/..." runs MODE):
#
#   ok          a small document response: "ok conn=C req=R\n" (C: the connection's number, R: its request count)
#   localredirect  a CGI local redirect to /index.html, the whole response and FCGI_END_REQUEST in one write
#   params      the FCGI_PARAMS it received, "NAME=value" lines, sorted
#   echo        the FCGI_STDIN it received, byte for byte (and logs the content lengths of the FCGI_STDIN records)
#   big         QUERY_STRING bytes (default 4 MiB) of "%08d\n" lines, with a Content-Length, in FCGI_STDOUT records
#               of varying sizes (1 to 65535 bytes); blocking sends, so a slow client holds it up (backpressure);
#               logs "conn=C big sent" when all of it is sent
#   stderr      two FCGI_STDERR lines, then an ok response
#   stream      a header block, then "tick N\n" every 50 ms (at most 200); stops and ends the request with
#               FCGI_END_REQUEST when FCGI_ABORT_REQUEST arrives (logged as "abort")
#   wait        answers ok once the file STATE_DIR/release exists (at most 10 s)
#   pauses      a document response (with Content-Length) in three writes 0.1 s apart: the head, half the body, the
#               rest with FCGI_END_REQUEST
#   hang        never answers; keeps reading records until the connection closes
#   once        ok on a connection's first request; on a later one, closes the connection without answering
#   idleclose   ok, then closes the connection although spawnd asked to keep it (FCGI_KEEP_CONN)
#   close       closes the connection right after reading the request
#   version2    answers with a record whose version is 2
#   badheader   FCGI_STDOUT whose header block has a line without ':'
#   status101   a document response with "Status: 101 Switching Protocols" (an interim status, never final)
#   badredirect a local redirect whose Location has a fragment ("/index.html#top"), not a local path-query
#   noheader    FCGI_STDOUT with no header block at all (no empty line), then FCGI_END_REQUEST
#   endfirst    FCGI_END_REQUEST before any FCGI_STDOUT
#   wrongid     FCGI_STDOUT for a request id that is not the one in progress
#   unknowntype a record of type 99 for the request
#   badend      an FCGI_END_REQUEST whose body is 3 bytes instead of 8
#   short       announces Content-Length: 100, sends 10 body bytes, ends the request
#   shortlate   the same, with 0.3 s between the bytes and the end (spawnd has sent the head by then)
#
# Everything it sees goes to STATE_DIR/log, one line per event ("conn=C accepted", "conn=C req=R mode=M ...",
# "conn=C abort", "conn=C eof"), which the tests read. Stop it with SIGTERM.
import os
import select
import socket
import struct
import sys
import threading
import time

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 2, 3, 4, 5, 6, 7
KEEP_CONN = 1

sock_path, state_dir = sys.argv[1], sys.argv[2]
log_lock = threading.Lock()


def log(line):
    with log_lock:
        with open(os.path.join(state_dir, "log"), "a") as f:
            f.write(line + "\n")


def record(rtype, rid, content=b"", version=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBx", version, rtype, rid, len(content), pad) + content + b"\0" * pad


def stream(rtype, rid, data, sizes=(65535,)):
    out, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        out.append(record(rtype, rid, data[pos:pos + n]))
        pos += n
        i += 1
    return b"".join(out)


def end_request(rid, app_status=0):
    return record(END_REQUEST, rid, struct.pack("!IB3x", app_status, 0))


def name_values(data):
    pairs, pos = {}, 0

    def length():
        nonlocal pos
        if data[pos] < 128:
            pos += 1
            return data[pos - 1]
        n = struct.unpack("!I", data[pos:pos + 4])[0] & 0x7FFFFFFF
        pos += 4
        return n

    while pos < len(data):
        nl = length()
        vl = length()
        name = data[pos:pos + nl].decode("latin-1")
        pos += nl
        pairs[name] = data[pos:pos + vl].decode("latin-1")
        pos += vl
    return pairs


def document(body, extra=b""):
    return b"Content-Type: text/plain\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Connection:
    def __init__(self, sock, number):
        self.sock = sock
        self.number = number
        self.buf = b""

    def read_record(self, timeout=None):
        """(type, request id, content); None on timeout; raises EOFError when the peer closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if len(self.buf) >= 8:
                _, rtype, rid, clen, plen = struct.unpack("!BBHHBx", self.buf[:8])
                if len(self.buf) >= 8 + clen + plen:
                    content = self.buf[8:8 + clen]
                    self.buf = self.buf[8 + clen + plen:]
                    return rtype, rid, content
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                raise EOFError
            self.buf += data

    def read_request(self):
        rid, flags, params, stdin, stdin_sizes = None, 0, b"", b"", []
        params_done = stdin_done = False
        while not (params_done and stdin_done):
            rtype, r, content = self.read_record()
            if rid is None and rtype != BEGIN_REQUEST and r != 0:
                # Strict, as php-fpm is (fcgi_read_request): a request starts with FCGI_BEGIN_REQUEST.
                log("conn=%d record type=%d before FCGI_BEGIN_REQUEST: closing" % (self.number, rtype))
                raise EOFError
            if rtype == BEGIN_REQUEST:
                rid = r
                flags = content[2]
            elif rtype == PARAMS:
                if content:
                    params += content
                else:
                    params_done = True
            elif rtype == STDIN:
                if content:
                    stdin += content
                    stdin_sizes.append(len(content))
                else:
                    stdin_done = True
            elif rtype == ABORT_REQUEST:
                log("conn=%d abort" % self.number)
        return rid, flags, name_values(params), stdin, stdin_sizes

    def send(self, data):
        self.sock.sendall(data)


def serve(conn):
    requests = 0
    try:
        while True:
            rid, flags, params, stdin, stdin_sizes = conn.read_request()
            requests += 1
            mode = params.get("SCRIPT_NAME", "").rstrip("/").rsplit("/", 1)[-1]
            query = params.get("QUERY_STRING", "")
            log("conn=%d req=%d mode=%s method=%s keep=%d stdin=%d" %
                (conn.number, requests, mode, params.get("REQUEST_METHOD", ""), flags & KEEP_CONN, len(stdin)))
            tag = b"conn=%d req=%d" % (conn.number, requests)
            if mode == "ok" or mode == "idleclose" or (mode == "once" and requests == 1):
                conn.send(stream(STDOUT, rid, document(b"ok " + tag + b"\n")) + record(STDOUT, rid) + end_request(rid))
                if mode == "idleclose":
                    log("conn=%d closing after the response" % conn.number)
                    return
            elif mode == "once":
                log("conn=%d closing reused connection" % conn.number)
                return
            elif mode == "localredirect":
                conn.send(record(STDOUT, rid, b"Location: /index.html\r\n\r\n") + record(STDOUT, rid) + end_request(rid))
            elif mode == "params":
                body = "".join("%s=%s\n" % kv for kv in sorted(params.items())).encode("latin-1")
                conn.send(stream(STDOUT, rid, document(body)) + record(STDOUT, rid) + end_request(rid))
            elif mode == "echo":
                log("conn=%d stdin-records=%s" % (conn.number, ",".join(str(n) for n in stdin_sizes)))
                conn.send(stream(STDOUT, rid, document(stdin, b"X-Stdin-Records: %d\r\n" % len(stdin_sizes)))
                          + record(STDOUT, rid) + end_request(rid))
            elif mode == "big":
                size = int(query) if query.isdigit() else 4 << 20
                lines = b"".join(b"%08d\n" % i for i in range(size // 9 + 1))[:size]
                conn.send(stream(STDOUT, rid, document(lines), sizes=(65535, 1, 4096, 30001, 65535, 7, 65000)))
                conn.send(record(STDOUT, rid) + end_request(rid))
                log("conn=%d big sent" % conn.number)
            elif mode == "stderr":
                conn.send(record(STDERR, rid, b"bad-app: first stderr line\nbad-app: second ")
                          + record(STDERR, rid, b"stderr line\n") + record(STDERR, rid)
                          + stream(STDOUT, rid, document(b"ok " + tag + b"\n")) + record(STDOUT, rid)
                          + end_request(rid))
            elif mode == "stream":
                conn.send(record(STDOUT, rid, b"Content-Type: text/plain\r\n\r\n"))
                aborted = False
                for tick in range(200):
                    got = conn.read_record(timeout=0.05)
                    if got is not None and got[0] == ABORT_REQUEST:
                        log("conn=%d abort id=%d" % (conn.number, got[1]))
                        aborted = True
                        break
                    try:
                        conn.send(record(STDOUT, rid, b"tick %d\n" % tick))
                    except OSError:
                        log("conn=%d send failed" % conn.number)
                        return
                conn.send(record(STDOUT, rid) + end_request(rid))
                log("conn=%d ended stream aborted=%d" % (conn.number, aborted))
            elif mode == "pauses":
                body = b"".join(b"line %03d\n" % i for i in range(100))
                head = record(STDOUT, rid, b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body))
                half = len(body) // 2
                conn.send(head)
                time.sleep(0.1)
                conn.send(record(STDOUT, rid, body[:half]))
                time.sleep(0.1)
                conn.send(record(STDOUT, rid, body[half:]) + record(STDOUT, rid) + end_request(rid))
            elif mode == "wait":
                release = os.path.join(state_dir, "release")
                deadline = time.monotonic() + 10
                while not os.path.exists(release) and time.monotonic() < deadline:
                    time.sleep(0.02)
                conn.send(stream(STDOUT, rid, document(b"ok " + tag + b"\n")) + record(STDOUT, rid) + end_request(rid))
            elif mode == "hang":
                while True:
                    rtype, r, _ = conn.read_record()
                    log("conn=%d record type=%d id=%d while hanging" % (conn.number, rtype, r))
            elif mode == "close":
                return
            elif mode == "version2":
                conn.send(record(STDOUT, rid, b"Content-Type: text/plain\r\n\r\nv2\n", version=2))
            elif mode == "badheader":
                conn.send(record(STDOUT, rid, b"this line has no colon\r\n\r\nbody\n") + record(STDOUT, rid)
                          + end_request(rid))
            elif mode == "status101":
                conn.send(stream(STDOUT, rid, document(b"switched\n", b"Status: 101 Switching Protocols\r\n"))
                          + record(STDOUT, rid) + end_request(rid))
            elif mode == "badredirect":
                conn.send(record(STDOUT, rid, b"Location: /index.html#top\r\n\r\n") + record(STDOUT, rid)
                          + end_request(rid))
            elif mode == "noheader":
                conn.send(record(STDOUT, rid, b"just some bytes, never an empty line") + record(STDOUT, rid)
                          + end_request(rid))
            elif mode == "endfirst":
                conn.send(end_request(rid))
            elif mode == "wrongid":
                conn.send(record(STDOUT, rid + 1, document(b"wrong id\n")) + end_request(rid + 1))
            elif mode == "unknowntype":
                conn.send(record(99, rid, b"?"))
            elif mode == "badend":
                conn.send(record(STDOUT, rid, document(b"x\n")) + record(STDOUT, rid)
                          + record(END_REQUEST, rid, b"\0\0\0"))
            elif mode == "short" or mode == "shortlate":
                conn.send(record(STDOUT, rid, b"Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten.\n"))
                if mode == "shortlate":
                    time.sleep(0.3)
                conn.send(record(STDOUT, rid) + end_request(rid))
            else:
                conn.send(stream(STDOUT, rid, document(b"unknown mode\n", b"Status: 404 Not Found\r\n"))
                          + record(STDOUT, rid) + end_request(rid))
            if not flags & KEEP_CONN:
                return
    except EOFError:
        log("conn=%d eof" % conn.number)
    except OSError as e:
        log("conn=%d error %s" % (conn.number, e))
    finally:
        try:
            conn.sock.close()
        except OSError:
            pass


def main():
    # Bound and listening under a temporary name first: once SOCKET_PATH exists, connections to it are accepted.
    building = sock_path + ".new"
    for path in (sock_path, building):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(building)
    listener.listen(64)
    os.rename(building, sock_path)
    number = 0
    while True:
        s, _ = listener.accept()
        number += 1
        log("conn=%d accepted" % number)
        threading.Thread(target=serve, args=(Connection(s, number),), daemon=True).start()


main()
