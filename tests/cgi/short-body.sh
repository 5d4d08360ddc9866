#!/bin/sh
# tests/cgi/short-body.sh — announces Content-Length: 100, sends 5 bytes and exits: the response cannot be
# completed, so the client must see it cut off (connection closed), never a complete-looking response.
printf 'Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nshort'
