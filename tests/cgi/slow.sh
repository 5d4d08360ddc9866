#!/bin/sh
# tests/cgi/slow.sh — streams its body slowly: five lines 0.1 s apart, without a Content-Length, so that the server
# has to send it with the chunked transfer coding (HTTP/1.1) as it arrives.
printf 'Content-Type: text/plain\r\n\r\n'
for i in 1 2 3 4 5; do
  printf 'slow line %d\n' "$i"
  sleep 0.1
done
