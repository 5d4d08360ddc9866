#!/bin/sh
# tests/cgi/sleep.sh — sleeps for the query string's number of seconds (default 1), then answers a small document.
sleep "${QUERY_STRING:-1}"
printf 'Content-Type: text/plain\r\n\r\nslept %s\n' "${QUERY_STRING:-1}"
