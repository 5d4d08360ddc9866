#!/bin/sh
# tests/cgi/stderr.sh — writes 600 numbered lines of about 160 bytes to stderr ("stderr-line 0001 xxx..." to
# "stderr-line 0600 xxx..."), about 96 KiB, more than a pipe buffer holds, then a valid response. The script only
# gets to its response if spawnd drains stderr while the child runs; each line must reach spawnd's error log, tagged
# with the script name.
i=1
pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
while [ $i -le 600 ]; do
  printf 'stderr-line %04d %s\n' "$i" "$pad" >&2
  i=$((i + 1))
done
printf 'Content-Type: text/plain\r\n\r\nstderr done\n'
