#!/bin/sh
# tests/cgi/local-redirect.sh — a local redirect response (RFC 3875 §6.2.2): only "Location: /path", which the
# server serves itself as a new GET. The target is "/redirected.txt", or "/" + the query string ("?cgi-bin/env.pl/x").
printf 'Location: /%s\r\n\r\n' "${QUERY_STRING:-redirected.txt}"
