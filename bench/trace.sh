#!/usr/bin/env bash
# bench/trace.sh - what --trace costs (trace.h): guest -> host throughput
# with tracing off, at --trace=1 (messages: the handshake's lines, then
# nothing per chain) and at --trace=2 (ring events: several lines per
# chain, written to /dev/null so that the figure is the daemon's cost of
# formatting and writing them, not a terminal's).  Off is the baseline:
# its target is "no measurable cost", --trace=1 within the run-to-run
# noise of off.
#
# The guest is the harness (tests/frontend) with one 4096-byte buffer in
# flight, as hvc writes: the path with the most ring events per byte.
# bench/tcpbench reads as a TCP client.  The three variants alternate,
# RUNS each; the medians are compared.
#
# usage: bench/trace.sh [SIZE_MIB] [RUNS]      (defaults 32 and 5)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_size 32 5 "$@"
need "$DAEMON" "$FRONTEND" "$TCPBENCH"
bench_tmp

# listening: the daemon's vhost-user socket and TCP port are both there
# (what its "ready" line says, for a daemon whose stderr is /dev/null).
listening() {
	[ -S "$T/s0" ] && [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
}

# start LEVEL: the daemon traced at LEVEL (0: off); level 2 to /dev/null.
start() {
	local end
	port=$(free_port)
	set -- "$1" --socket-path="$T/s" --backend=network --tcp-port="$port" \
		--history="$WARM"
	case $1 in
	0) shift; daemon_start "$@" ;;
	1) shift; daemon_start "$@" --trace=1 ;;
	2)
		shift
		rm -f "$T/daemon.log" "$T/s0"
		"$DAEMON" "$@" --trace=2 2>/dev/null &
		DPID=$!
		end=$(( $(date +%s) + 10 ))
		until listening; do
			[ "$(date +%s)" -lt "$end" ] || { echo "daemon not ready" >&2; exit 1; }
			sleep 0.01
		done
		;;
	esac
}

# g2h LEVEL: MiB/s guest -> TCP client, one buffer in flight.
g2h() {
	local out fpid
	start "$1"
	"$FRONTEND" --timeout=120 "$T/s0" init handshake expect GO \
		write-bytes $((WARM + SIZE)) --inflight=1 --repeat 2>"$T/fe.err" &
	fpid=$!
	out=$("$TCPBENCH" sink "$port" "$SIZE" "$WARM")
	wait "$fpid" || { echo "frontend failed: $(cat "$T/fe.err")" >&2; exit 1; }
	daemon_stop
	if grep -q "skip" "$T/daemon.log" 2>/dev/null; then
		echo "the reader skipped output: the figure is not valid" >&2
		exit 1
	fi
	mibs $out
}

: >"$T/off"; : >"$T/t1"; : >"$T/t2"
for _ in $(seq "$RUNS"); do
	g2h 0 >>"$T/off"
	g2h 1 >>"$T/t1"
	g2h 2 >>"$T/t2"
done
medians off t1 t2
echo "--trace cost, guest->host, 1 buffer in flight, $MIB MiB per run,"
echo "medians of $RUNS alternating runs (MiB/s):"
echo "  tracing off:               $off   [$(runs "$T/off")]"
echo "  --trace=1:                 $t1   [$(runs "$T/t1")]"
echo "  --trace=2 (to /dev/null):  $t2   [$(runs "$T/t2")]"
row "--trace=1, guest->host 1 in flight" "$t1" MiB/s "$off" "$(ratio "$t1" "$off")" "~1.0x"
row "--trace=2 to /dev/null, same" "$t2" MiB/s "$off" "$(ratio "$t2" "$off")" "-"
