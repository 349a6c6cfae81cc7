#!/usr/bin/env bash
# bench/slow-client.sh - does a client that stops reading slow down one
# that reads?  The harness (tests/frontend) plays a guest writing SIZE
# bytes through the console as fast as the daemon completes its buffers;
# a fast client reads them over TCP, timed after WARM bytes (bench/lib.sh)
# that warm the history ring up.  Baseline: the fast client alone.
# Then the same with a second client connected that never reads.  Runs
# alternate (RUNS each) and the medians are compared: the ratio should be
# about 1.0.
#
# usage: bench/slow-client.sh [SIZE_MIB] [RUNS]      (defaults 32 and 5)
# Needs: make vhost-device-console tests/frontend tests/clients bench/tcpbench
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_size 32 5 "$@"
bench_tmp
need "$DAEMON" "$FRONTEND" tests/clients "$TCPBENCH"

# one_run STALLED(0|1): MiB/s the fast client saw.
one_run() {
	local stalled=$1 port out stall_pid=
	port=$(free_port)
	# the fast client must never fall out of the ring: WARM (bench/lib.sh)
	daemon_start --socket-path="$T/s" --backend=network --tcp-port="$port" \
		--history="$WARM"
	if [ "$stalled" = 1 ]; then
		tests/clients --timeout=0 --stall "127.0.0.1:$port" >"$T/stall.out" 2>&1 &
		stall_pid=$!
		wait_for "$T/stall.out" '^connected'
	fi
	"$FRONTEND" --timeout=60 "$T/s0" init handshake expect GO \
		write-bytes $((WARM + SIZE)) --inflight=16 --repeat 2>"$T/fe.err" &
	local fpid=$!
	out=$("$TCPBENCH" sink "$port" "$SIZE" "$WARM")
	wait "$fpid" || { echo "frontend failed: $(cat "$T/fe.err")" >&2; exit 1; }
	[ -n "$stall_pid" ] && kill "$stall_pid" 2>/dev/null
	daemon_stop
	if grep -q "127.0.0.1:.* is not reading" "$T/daemon.log" && [ "$stalled" = 0 ]; then
		echo "the fast client fell behind: the figure is not valid" >&2
		exit 1
	fi
	mibs $out
}

: >"$T/alone"; : >"$T/with"
for _ in $(seq "$RUNS"); do
	one_run 0 >>"$T/alone"
	one_run 1 >>"$T/with"
done
medians alone with
echo "guest -> fast TCP client, $MIB MiB, median of $RUNS runs each (alternating):"
echo "  fast client alone (baseline):        $alone MiB/s   [$(runs "$T/alone")]"
echo "  with a client that never reads:      $with MiB/s   [$(runs "$T/with")]"
r=$(ratio "$with" "$alone")
echo "  ratio with/alone: $r (1.00 = not slowed at all)"
row "guest->host beside a stalled client" "$with" MiB/s "$alone" "$r" "~1.0x"
