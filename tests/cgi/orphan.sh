#!/bin/sh
# tests/cgi/orphan.sh — starts a response without a Content-Length, leaves a background sleep that holds stdout
# open, and exits 0 at once. The response cannot end (no EOF on stdout) until the timeout; then the whole process
# group must go, although its leader has long been reaped.
printf 'Content-Type: text/plain\r\n\r\nstarted\n'
sleep 300 &
echo "orphan.sh: left background sleep $!" >&2
exit 0
