#!/bin/sh
# tests/cgi/early-exit.sh — exits with status 3 before writing anything.
exit 3
