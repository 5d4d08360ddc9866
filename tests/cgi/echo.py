#!/usr/bin/python3
# tests/cgi/echo.py — echoes the request body back, byte for byte (binary safe).
# Reads exactly CONTENT_LENGTH bytes (RFC 3875 §4.2: the script must not read more), then answers
# application/octet-stream with a Content-Length, plus X-Content-Length (the CONTENT_LENGTH it was given, or
# "unset") and X-Content-Type (CONTENT_TYPE, or "unset"). A short body is answered with 400.
import os
import sys

length_var = os.environ.get("CONTENT_LENGTH")
want = int(length_var) if length_var else 0
chunks = []
got = 0
stdin = sys.stdin.buffer
while got < want:
    chunk = stdin.read1(min(want - got, 1 << 16))
    if not chunk:
        break
    chunks.append(chunk)
    got += len(chunk)
body = b"".join(chunks)

out = sys.stdout.buffer
if got < want:
    msg = b"short body: %d of %d bytes\n" % (got, want)
    out.write(b"Status: 400 Short Body\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(msg))
    out.write(msg)
    sys.exit(0)
out.write(b"Content-Type: application/octet-stream\r\n")
out.write(b"X-Content-Length: %s\r\n" % (length_var.encode() if length_var is not None else b"unset"))
out.write(b"X-Content-Type: %s\r\n" % os.environ.get("CONTENT_TYPE", "unset").encode())
out.write(b"Content-Length: %d\r\n\r\n" % len(body))
out.write(body)
