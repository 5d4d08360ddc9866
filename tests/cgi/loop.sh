#!/bin/sh
# tests/cgi/loop.sh — a local redirect to itself, forever: spawnd must stop the chain (500) instead of looping.
printf 'Location: /cgi-bin/loop.sh\r\n\r\n'
