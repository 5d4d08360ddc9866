#!/bin/sh
# tests/cgi/header-cr.sh — a field value with a bare CR inside ("X-Echo: a<CR>X-Injected: yes"), as a script that
# echoes user input into a header might write. Passed on as it is, the CR could split the client's response
# (RFC 9110 §5.5: reject, or replace CR with SP).
printf 'Content-Type: text/plain\r\nX-Echo: a\rX-Injected: yes\r\n\r\nbody\n'
