#!/usr/bin/env bash
# bench/qemu.sh - the headline figure: a real QEMU guest's console
# throughput through the daemon against QEMU's own virtconsole, on the same
# guest (the QEMU lab, ../shared/qemu-lab, built in $LAB_DIR).
#
# Each run boots the lab guest in labmode=bench: it writes MIB MiB of zeros
# to /dev/hvc0 with dd once the host has answered its LAB-BENCH-READY.  The
# host side is bench/conread on a UNIX socket in both cases, timing from
# the start token to the last byte:
#   daemon:  vhost-user-device-pci -> vhost-device-console --backend=unix
#   builtin: virtio-serial-pci + virtconsole -> QEMU's chardev socket
# Runs alternate (builtin, daemon, builtin, ...), RUNS each; the medians
# and their ratio are printed.  Under TCG the guest itself is slow and
# single runs are noisy: compare medians only.
#
# usage: LAB_DIR=/var/tmp/qemu-lab bench/qemu.sh [MIB] [RUNS]   (16 and 3)
# Needs: the lab (LAB_DIR=... ../shared/qemu-lab/setup.sh), and
#        make vhost-device-console bench/conread
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
MIB=${1:-16}
RUNS=${2:-3}
SIZE=$((MIB * 1048576))
LAB=${LAB_DIR:-/var/tmp/qemu-lab}
BOOT=${LAB_BOOT:-$(cd .. && pwd)/shared/qemu-lab/boot.sh}
need "$DAEMON" bench/conread
if [ ! -x "$BOOT" ] || [ ! -x "$LAB/qemu-build/qemu-system-x86_64" ]; then
	echo "qemu.sh: no QEMU lab in $LAB (LAB_DIR=... ../shared/qemu-lab/setup.sh; LAB_BOOT=path/to/boot.sh)" >&2
	exit 1
fi

T=$(mktemp -d /tmp/vc-bench-qemu.XXXXXX)
QPID= DPID=
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# boot MODE SOCK: the lab guest in bench mode, powering off when done.
boot() {
	LAB_DIR=$LAB APPEND_EXTRA="labhalt=1" "$BOOT" "$1" "$2" "$T/serial.log" \
		"bench:$SIZE" 2>"$T/boot.err" &
	QPID=$!
}

# finish: QEMU powers off by itself after the run (labhalt=1).
finish() {
	local end=$(( $(date +%s) + 30 ))
	while kill -0 "$QPID" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
		sleep 0.1
	done
	kill "$QPID" 2>/dev/null || true
	wait "$QPID" 2>/dev/null || true
	QPID=
}

# conread ADDRESS: one timed run against the lab guest, MiB/s on stdout.
conread() {
	bench/conread --timeout=180 --ready=LAB-BENCH-READY --send='go\n' \
		--start='LAB-BENCH-START\n' --bytes="$SIZE" "$1" >"$T/run.out" ||
		{ echo "qemu.sh: run failed; serial log:" >&2; tail -20 "$T/serial.log" >&2; exit 1; }
	sed -n 's/.*mibs=//p' "$T/run.out"
}

run_builtin() {
	rm -f "$T/con.sock"
	boot builtin "$T/con.sock"
	wait_for_socket "$T/con.sock"
	conread "$T/con.sock"
	finish
}

run_daemon() {
	rm -f "$T/vc.sock0" "$T/con0" "$T/daemon.log"
	"$DAEMON" --socket-path="$T/vc.sock" --backend=unix --unix-path="$T/con" \
		2>"$T/daemon.log" &
	DPID=$!
	wait_for "$T/daemon.log" 'ready: '
	boot vhost "$T/vc.sock0"
	conread "$T/con0"
	finish
	kill "$DPID"; wait "$DPID" 2>/dev/null || true
	DPID=
}

# QEMU creates its chardev socket a moment after it starts.
wait_for_socket() {
	local end=$(( $(date +%s) + 30 ))
	until [ -S "$1" ]; do
		[ "$(date +%s)" -lt "$end" ] || { echo "qemu.sh: QEMU made no $1" >&2; cat "$T/boot.err" >&2; exit 1; }
		sleep 0.05
	done
}

: >"$T/builtin"; : >"$T/daemon"
for _ in $(seq "$RUNS"); do
	run_builtin >>"$T/builtin"
	run_daemon >>"$T/daemon"
done
b=$(median <"$T/builtin")
d=$(median <"$T/daemon")
echo "QEMU lab guest (TCG): dd $MIB MiB to /dev/hvc0, read on a UNIX socket, median of $RUNS (alternating):"
echo "  QEMU's virtconsole (baseline): $b MiB/s   [$(tr '\n' ' ' <"$T/builtin")]"
echo "  through the daemon:            $d MiB/s   [$(tr '\n' ' ' <"$T/daemon")]"
row "QEMU guest hvc0, daemon vs virtconsole" "$d" MiB/s "$b" "$(ratio "$d" "$b")" ">=1.5x"
