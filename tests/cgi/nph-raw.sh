#!/bin/sh
# tests/cgi/nph-raw.sh — a non-parsed-header script (RFC 3875 §5): its output is the whole HTTP response, status
# line included, which the server must pass on unchanged.
printf 'HTTP/1.1 299 Raw Status\r\n'
printf 'Content-Type: text/plain\r\n'
printf 'X-Nph: yes\r\n'
printf 'Connection: close\r\n'
printf '\r\n'
printf 'raw body from nph-raw.sh\n'
