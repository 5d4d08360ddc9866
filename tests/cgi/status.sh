#!/bin/sh
# tests/cgi/status.sh — a document response with a Status of its own: "Status: 404 Not Found" by default, or the
# three-digit code given as the query string ("?410").
code=${QUERY_STRING:-404}
case $code in
  404) reason="Not Found" ;;
  *) reason="Custom Reason" ;;
esac
body="status $code from the script"
printf 'Status: %s %s\r\n' "$code" "$reason"
printf 'Content-Type: text/plain\r\n'
printf 'X-Script: status.sh\r\n'
printf '\r\n'
printf '%s\n' "$body"
