#!/bin/sh
# Installs the Debian packages spawnd needs, only those that are missing.
# Idempotent: when everything is present it does nothing and needs no network.
#
#   scripts/install-deps.sh           build + test dependencies (nginx, php-fpm and fcgiwrap are test
#                                     dependencies: the FastCGI interop tests start them on loopback; dokuwiki
#                                     is the PHP application the PHP-site tests serve through php-fpm;
#                                     libsystemd-dev for socket activation and readiness, help2man for the man
#                                     page, systemd for systemd-socket-activate and systemd-analyze in the tests,
#                                     dpkg-dev for `cpack -G DEB`'s dpkg-shlibdeps, libssl-dev for HTTPS and
#                                     the openssl CLI that makes the HTTPS tests' certificates)
#   scripts/install-deps.sh --bench   also the benchmark's other peers (lighttpd, Apache), slowhttptest and testssl.sh
#   scripts/install-deps.sh --fuzz    also clang-14 and its libFuzzer/sanitizer runtimes (`make fuzz`)
set -eu

packages="build-essential cmake pkg-config libsqlite3-dev sqlite3 node-llhttp libcli11-dev catch2
nlohmann-json3-dev libtomlplusplus-dev libsystemd-dev help2man wrk curl perl python3 php-cgi nginx-light php-fpm
fcgiwrap dokuwiki systemd dpkg-dev adduser libssl-dev openssl"

for arg in "$@"; do
	case "$arg" in
	--bench) packages="$packages lighttpd apache2 slowhttptest testssl.sh" ;;
	--fuzz) packages="$packages clang-14 libclang-rt-14-dev" ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
	esac
done

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

echo "install-deps.sh: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
