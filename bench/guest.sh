#!/usr/bin/env bash
# bench/guest.sh - a real guest's console throughput: the user-mode-linux
# guest of the test suite boots against the daemon and writes MIB MiB of
# zeros to /dev/hvc0 with dd (64 KiB blocks, the tty in raw output mode); a
# TCP client (bench/conread) times them from a start token to the last
# byte.  UML has no console of its own to compare with on this path: the
# comparison against QEMU's virtconsole is bench/qemu.sh (make bench-qemu).
# The median of RUNS runs is reported.
#
# usage: bench/guest.sh [MIB] [RUNS]          (defaults 32 and 3)
# Needs: linux.uml (package user-mode-linux), busybox-static, and
#        make vhost-device-console bench/conread
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_size 32 3 "$@"
BS=65536
need "$DAEMON" bench/conread
command -v linux.uml >/dev/null || { echo "guest.sh: no linux.uml (package user-mode-linux): skipped" >&2; exit 0; }

bench_tmp guest
BG_PIDS=()
# tests/uml.bash needs wait_until and $T, as in the bats suite: the suite's
# own helpers (its free_port, which replaces bench/lib.sh's, is as good).
. tests/wait.sh
. tests/uml.bash
cleanup() {
	uml_stop >/dev/null 2>&1 || true
	[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

uml_rootfs "$T/root" >/dev/null
PORT=$(free_port)
daemon_start --socket-path="$T/vc.sock" --backend=network --tcp-port="$PORT"
uml_boot "$T/vc.sock0"
uml_wait_ready 60 || exit 1
ADDR=127.0.0.1:$PORT

# through_daemon: one run, MiB/s.  The start token is printed as
# $((6*7)) arithmetic so that the echoed command line does not contain it.
through_daemon() {
	# -opost: zeros and newlines pass unchanged, the payload is exact.
	bench/conread --timeout=120 --start='BENCH-42-START\n' --bytes="$SIZE" \
		--send="stty -opost -echo; echo BENCH-\$((6*7))-START; dd if=/dev/zero bs=$BS count=$((SIZE / BS)) 2>/dev/null; stty opost echo\n" \
		"$ADDR" | sed -n 's/.*mibs=//p'
}
: >"$T/daemon.runs"
for _ in $(seq "$RUNS"); do
	through_daemon >>"$T/daemon.runs"
done
d=$(median <"$T/daemon.runs")
echo "user-mode-linux guest: dd $MIB MiB to /dev/hvc0, read by a TCP client, median of $RUNS:"
echo "  through the daemon: $d MiB/s   [$(runs "$T/daemon.runs")]"
echo "  (no baseline here: the QEMU lab's builtin virtconsole is the comparison, make bench-qemu)"
row "UML guest hvc0 -> TCP" "$d" MiB/s - - -
