#!/bin/sh
# Slow request bodies against a CGI (issue 20, part 2): slowhttptest holds 500 connections that each announce an
# 8 KiB body and send a few bytes every 2 s, for 20 s; meanwhile a probe alternates a static file and a CGI request
# every 0.25 s. Prints how many probes succeeded (HTTP 200 within 5 s), during the attack and right after it.
#
#   scripts/slow-body-attack.sh [SPAWND_FLAG...]     e.g. --mode fork, --request-buffering off
#
# Needs build/release/spawnd (make build) and slowhttptest and curl (scripts/install-deps.sh --bench). Loopback only.
set -eu
cd "$(dirname "$0")/.."
spawnd=build/release/spawnd
command -v slowhttptest >/dev/null || { echo "slow-body-attack.sh: slowhttptest missing (scripts/install-deps.sh --bench)" >&2; exit 2; }
[ -x "$spawnd" ] || { echo "slow-body-attack.sh: $spawnd missing (make build)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
echo "static" > "$work/probe.txt"
"$spawnd" --listen 127.0.0.1:0 --root "$work" --quiet "$@" 2>"$work/stderr" &
server=$!
for _ in $(seq 50); do grep -q "listening on" "$work/stderr" && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/stderr" | head -1)
[ -n "$port" ] || { cat "$work/stderr" >&2; exit 1; }

probe() {  # $1: how many probes; prints "ok total"
	ok=0 n=0
	while [ "$n" -lt "$1" ]; do
		case $((n % 2)) in 0) path=/probe.txt ;; *) path=/cgi-bin/hello ;; esac
		code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$port$path" || true)
		[ "$code" = 200 ] && ok=$((ok + 1))
		n=$((n + 1))
		sleep 0.25
	done
	echo "$ok $n"
}

slowhttptest -B -c 500 -r 200 -s 8192 -i 2 -l 20 -t POST -u "http://127.0.0.1:$port/cgi-bin/hello" \
	-p 5 >"$work/slowhttptest.log" 2>&1 &
attack=$!
sleep 3  # let the 500 connections open
during=$(probe 60)
wait "$attack" || true
after=$(probe 8)
set -- $during
echo "during the attack: $1 of $2 probes answered 200 ($((100 * $1 / $2)) %)"
set -- $after
echo "right after it:    $1 of $2 probes answered 200"
sed "s/\x1b\[[0-9;]*m//g" "$work/slowhttptest.log" | grep -E "^(pending|connected|closed|error)" | tail -4 | tr -s " " | paste -sd " " - || true
