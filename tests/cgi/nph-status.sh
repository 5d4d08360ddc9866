#!/bin/sh
# tests/cgi/nph-status.sh — an NPH script (RFC 3875 §5) whose status-line carries the code given as the query
# string ("?101"): anything but a final status (200-599) must not reach the client.
printf 'HTTP/1.1 %s Whatever\r\n' "${QUERY_STRING:-101}"
printf 'Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
printf 'tunnelled bytes\n'
