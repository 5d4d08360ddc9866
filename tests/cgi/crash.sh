#!/bin/sh
# tests/cgi/crash.sh — dies of SIGSEGV before writing anything (no core file: ulimit -c 0).
ulimit -c 0
kill -SEGV $$
