#!/bin/sh
# tests/cgi/hang.sh — never answers. It starts a background sleep first, so the process group holds two processes
# besides this shell: a timeout or a client disconnect must take down the whole group, not only this shell.
# It prints nothing on stdout (the background sleep keeps stdout open too).
sleep 300 &
echo "hang.sh: started pid $$, background sleep $!" >&2
sleep 300
