#!/usr/bin/env bash
# bench/qemu.sh - the headline figure: a real QEMU guest's console
# throughput through the daemon against QEMU's own virtconsole, on the same
# guest (the QEMU lab, ../shared/qemu-lab, built in $LAB_DIR).
#
# Two copies of the lab guest boot once, side by side, with a shell on
# /dev/hvc0:
#   daemon:  vhost-user-device-pci -> vhost-device-console --backend=unix
#   builtin: virtio-serial-pci + virtconsole -> QEMU's chardev socket
# Then, alternating between them RUNS times, bench/conread connects to the
# guest's console socket and has its shell write MIB MiB of zeros to
# /dev/hvc0 with dd (64 KiB blocks; the tty passes them in 2 KiB writes),
# timing from a start token to the last byte.  The medians and their ratio
# are printed.  The idle guest waits in HLT, so the one not measured costs
# next to nothing; under TCG single runs are still noisy: compare medians.
#
# usage: LAB_DIR=/var/tmp/qemu-lab bench/qemu.sh [MIB] [RUNS]   (16 and 7)
# Needs: the lab (LAB_DIR=... ../shared/qemu-lab/setup.sh), and
#        make vhost-device-console bench/conread
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_size 16 7 "$@"
BS=65536
LAB=${LAB_DIR:-/var/tmp/qemu-lab}
BOOT=${LAB_BOOT:-$(cd .. && pwd)/shared/qemu-lab/boot.sh}
need "$DAEMON" bench/conread
if [ ! -x "$BOOT" ] || [ ! -x "$LAB/qemu-build/qemu-system-x86_64" ]; then
	echo "qemu.sh: no QEMU lab in $LAB (LAB_DIR=... ../shared/qemu-lab/setup.sh; LAB_BOOT=path/to/boot.sh)" >&2
	exit 1
fi

bench_tmp qemu
PIDS=()
cleanup() {
	[ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# boot NAME MODE SOCK: a lab guest with a shell on hvc0; its serial log
# is $T/NAME.serial.
boot() {
	LAB_DIR=$LAB "$BOOT" "$2" "$3" "$T/$1.serial" shell 2>"$T/$1.boot" &
	PIDS+=("$!")
}

daemon_start --socket-path="$T/vc.sock" --backend=unix --unix-path="$T/con"
PIDS+=("$DPID")
boot daemon vhost "$T/vc.sock0"
boot builtin builtin "$T/builtin.sock"
for g in daemon builtin; do
	wait_for "$T/$g.serial" 'LAB-MARKER: HVC0-READY' 120 ||
		{ cat "$T/$g.boot" "$T/$g.serial" >&2; exit 1; }
done

# run ADDRESS N: one timed run, MiB/s.  The start token carries N, so a
# token replayed from an earlier run's history is never taken for this
# one's, and is printed by arithmetic, so the echoed command line does
# not contain it.  -opost: the zeros pass the tty unchanged.
run() {
	local tok="BENCH-$2-START"
	bench/conread --timeout=180 --start="$tok\n" --bytes="$SIZE" \
		--send="stty -opost -echo; echo BENCH-\$(($2+0))-START; dd if=/dev/zero bs=$BS count=$((SIZE / BS)) 2>/dev/null; stty opost echo\n" \
		"$1" >"$T/run.out" ||
		{ echo "qemu.sh: run failed" >&2; tail -5 "$T"/*.serial >&2; exit 1; }
	sed -n 's/.*mibs=//p' "$T/run.out"
}

: >"$T/builtin"; : >"$T/daemon"
for i in $(seq "$RUNS"); do
	run "$T/builtin.sock" "$((RANDOM + 100000 * i))" >>"$T/builtin"
	run "$T/con0" "$((RANDOM + 100000 * i))" >>"$T/daemon"
done
medians builtin daemon
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'): QEMU lab guest (TCG), dd $MIB MiB to /dev/hvc0, read on a UNIX socket, median of $RUNS (alternating):"
echo "  QEMU's virtconsole (baseline): $builtin MiB/s   [$(runs "$T/builtin")]"
echo "  through the daemon:            $daemon MiB/s   [$(runs "$T/daemon")]"
row "QEMU guest hvc0, daemon vs virtconsole" "$daemon" MiB/s "$builtin" "$(ratio "$daemon" "$builtin")" ">=1.5x"
