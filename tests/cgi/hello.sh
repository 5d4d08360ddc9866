#!/bin/sh
# tests/cgi/hello.sh — the smallest document response, with a Content-Length; cheap enough for load tests.
printf 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'
