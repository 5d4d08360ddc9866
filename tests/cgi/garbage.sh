#!/bin/sh
# tests/cgi/garbage.sh — prints text that is not a CGI response (no "Name: value" header lines), then exits 0.
printf 'Hello, world!\nThis is not a header block.\n\nNor is this.\n'
