#!/usr/bin/env bash
# bench/throughput.sh - bytes through the daemon, both ways, against the
# same bytes through a plain loopback TCP connection (the limit of this
# path: the daemon's clients are TCP clients).
#
# Guest -> host: the harness (tests/frontend) plays a guest writing SIZE
# bytes into the port0 transmitq, one 4096-byte buffer per write as hvc
# does, on 256-entry queues, as fast as the daemon completes them: once
# with one buffer in flight (hvc waits for each), once with the ring kept
# full.  bench/tcpbench reads them as a TCP client.
# Host -> guest: tcpbench writes SIZE bytes, the harness keeps all 256
# receive buffers posted and counts what arrives.
# Baselines: tcpbench loop, SIZE bytes over loopback TCP in 4096-byte
# writes (what the guest writes), and in 256 KiB writes (the path's limit:
# the daemon batches its writes, so it can beat the first).  The targets
# are judged against the stricter of the two, the bulk one.
# Every figure is timed from the first byte to the last (the rate of the
# stream, not the set-up before it).  Daemon and baseline runs alternate,
# RUNS each; the medians are compared.
#
# usage: bench/throughput.sh [SIZE_MIB] [RUNS]      (defaults 64 and 7)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_size 64 7 "$@"
need "$DAEMON" "$FRONTEND" "$TCPBENCH"
bench_tmp

# start_daemon: one device on a free TCP port ($port), a WARM history.
start_daemon() {
	port=$(free_port)
	daemon_start --socket-path="$T/s" --backend=network --tcp-port="$port" \
		--history="$WARM"
}

stop_daemon() {
	daemon_stop
	if grep -q "skip" "$T/daemon.log"; then
		echo "the reader skipped output: the figure is not valid" >&2
		exit 1
	fi
}

# g2h INFLIGHT: MiB/s guest -> TCP client.
g2h() {
	local out
	start_daemon
	"$FRONTEND" --timeout=60 "$T/s0" init handshake expect GO \
		write-bytes $((WARM + SIZE)) --inflight="$1" --repeat 2>"$T/fe.err" &
	local fpid=$!
	out=$("$TCPBENCH" sink "$port" "$SIZE" "$WARM")
	wait "$fpid" || { echo "frontend failed: $(cat "$T/fe.err")" >&2; exit 1; }
	stop_daemon
	mibs $out
}

# h2g: MiB/s TCP client -> guest.
h2g() {
	local out
	start_daemon
	"$FRONTEND" --timeout=60 "$T/s0" init handshake --rx-bufs=256 write GO \
		read-bytes "$SIZE" >"$T/fe.out" 2>"$T/fe.err" &
	local fpid=$!
	"$TCPBENCH" source "$port" "$SIZE"
	wait "$fpid" || { echo "frontend failed: $(cat "$T/fe.err")" >&2; exit 1; }
	stop_daemon
	out=$(awk '/^read-bytes:/ { print $2, $5 }' "$T/fe.out")
	mibs $out
}

baseline() { mibs $("$TCPBENCH" loop "$SIZE" "$1"); }

: >"$T/g1"; : >"$T/gf"; : >"$T/h"; : >"$T/b"; : >"$T/bb"
for _ in $(seq "$RUNS"); do
	g2h 1 >>"$T/g1"
	baseline 4096 >>"$T/b"
	g2h 256 >>"$T/gf"
	baseline 262144 >>"$T/bb"
	h2g >>"$T/h"
done
medians b bb g1 gf h
echo "throughput, $MIB MiB per run, medians of $RUNS alternating runs (MiB/s):"
echo "  loopback TCP, 4 KiB writes:       $b   [$(runs "$T/b")]"
echo "  loopback TCP, 256 KiB writes:     $bb   [$(runs "$T/bb")]"
echo "  guest->host, 1 buffer in flight:  $g1   [$(runs "$T/g1")]"
echo "  guest->host, ring kept full:      $gf   [$(runs "$T/gf")]"
echo "  host->guest, 256 rx buffers:      $h   [$(runs "$T/h")]"
row "guest->host, 1 in flight (vs 4K)" "$g1" MiB/s "$b" "$(ratio "$g1" "$b")" "-"
row "guest->host, ring full (vs 4K)" "$gf" MiB/s "$b" "$(ratio "$gf" "$b")" "-"
row "guest->host, ring full (vs bulk)" "$gf" MiB/s "$bb" "$(ratio "$gf" "$bb")" ">=0.8x"
row "host->guest (vs bulk)" "$h" MiB/s "$bb" "$(ratio "$h" "$bb")" ">=0.5x"
