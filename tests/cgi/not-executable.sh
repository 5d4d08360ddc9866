#!/bin/sh
# tests/cgi/not-executable.sh — deliberately committed without the executable bit: spawnd must answer 403.
printf 'Content-Type: text/plain\r\n\r\nshould never run\n'
