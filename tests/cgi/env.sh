#!/bin/sh
# tests/cgi/env.sh — the env dumper of tests/cgi/env.pl as a POSIX shell script, same output format:
#   env:NAME=value, argc:N, argv:I=value, fd:N, cwd:PATH
# The shell adds variables of its own (PWD, maybe OLDPWD), so the exact-environment tests use env.pl. Values are
# printed as they are (no escaping): keep test values on one line.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
env | sort | sed 's/^/env:/'
printf 'argc:%d\n' $(($# + 1))
printf 'argv:0=%s\n' "$0"
i=1
for a in "$@"; do
  printf 'argv:%d=%s\n' "$i" "$a"
  i=$((i + 1))
done
# The glob is expanded by this shell, which opens /proc/self/fd for it and closes it again: an entry that no longer
# resolves afterwards was that directory fd (ls would show its own fds instead of ours). dash also keeps the script
# itself open on an fd >= 10 while it reads it; that one is skipped too, so that the list shows what spawnd gave us.
for f in /proc/self/fd/*; do
  [ -e "$f" ] && ! [ "$f" -ef "$0" ] && printf 'fd:%s\n' "${f##*/}"
done
printf 'cwd:%s\n' "$(pwd)"
