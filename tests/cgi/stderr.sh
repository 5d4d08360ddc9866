#!/bin/sh
# tests/cgi/stderr.sh — writes 300 numbered lines to stderr ("stderr-line 0001" ... "stderr-line 0300"; more than a
# pipe buffer holds when many are long), then a valid response. Each line must reach spawnd's error log, tagged with
# the script name; the response must not wait for anyone to read stderr.
i=1
pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
while [ $i -le 300 ]; do
  printf 'stderr-line %04d %s\n' "$i" "$pad" >&2
  i=$((i + 1))
done
printf 'Content-Type: text/plain\r\n\r\nstderr done\n'
