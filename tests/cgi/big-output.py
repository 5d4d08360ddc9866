#!/usr/bin/python3
# tests/cgi/big-output.py — a body of QUERY_STRING bytes (default 8 MiB) without a Content-Length, written in
# 64 KiB pieces; piece k is "%08d " % k repeated (and cut to size), so that a lost, repeated or reordered piece
# shows in the received body.
import os
import sys

size = int(os.environ.get("QUERY_STRING") or 8 * 1024 * 1024)
out = sys.stdout.buffer
out.write(b"Content-Type: application/octet-stream\r\n\r\n")
piece = 1 << 16
for k, start in enumerate(range(0, size, piece)):
    n = min(piece, size - start)
    out.write((b"%08d " % k * (piece // 9 + 1))[:n])
out.flush()
