#!/bin/sh
# Check (and, as root, install) the Debian packages the test suite needs.
# Not root: print the one apt-get line to run and fail at once.  (The
# browser test's node packages come from npm: make web-assets browser-deps.)
# Arguments: further packages, e.g. a cross compiler and qemu-user for
# `make check-arch`; with --only first, just those (`make demo`).
PKGS="bats socat user-mode-linux busybox-static telnet jq chromium picocom tmux asciinema
      nginx openssl curl"
[ "${1:-}" = --only ] && { shift; PKGS=; }
PKGS="$PKGS $*"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "tests/deps.sh: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq $missing >/dev/null && exit 0
	echo "tests/deps.sh: apt-get install failed" >&2
	exit 1
fi
echo "Packages are missing (Debian). Run:" >&2
echo "  sudo apt-get install$missing" >&2
exit 1
