#!/bin/sh
# tests/cgi/long-body.sh — announces Content-Length: 5 and sends 11 bytes: only the announced 5 may reach the
# client, and the connection must stay usable for the next request.
printf 'Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello world'
