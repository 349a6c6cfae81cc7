#!/usr/bin/env bash
# bench/latency.sh - keystroke latency: one byte from a TCP client into the
# guest's receiveq, and the guest's echo of it from the transmitq back out
# to the client, timed by the client (bench/tcpbench rtt) over N round
# trips after 100 unmeasured ones; the harness (tests/frontend echo-loop)
# plays a guest that echoes at once.  Baseline: the same client against a
# plain TCP echo server (tcpbench echo-rtt).  RUNS alternating runs each;
# the medians of their p50 and p99 are compared: the daemon's cost is the
# difference at p99.
#
# usage: bench/latency.sh [N] [RUNS]      (defaults 10000 and 5)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-10000}
RUNS=${2:-5}
need "$DAEMON" "$FRONTEND" "$TCPBENCH"
bench_tmp

# daemon_rtt: "p50 p99" in us through the daemon and the echoing guest.
daemon_rtt() {
	local port out
	port=$(free_port)
	# The last run's log says "ready" too: gone before this one starts.
	daemon_start --socket-path="$T/s" --backend=network --tcp-port="$port"
	"$FRONTEND" --timeout=60 "$T/s0" init handshake echo-loop $((N + 100)) \
		2>"$T/fe.err" &
	local fpid=$!
	out=$("$TCPBENCH" rtt "$port" "$N")
	wait "$fpid" || { echo "frontend failed: $(cat "$T/fe.err")" >&2; exit 1; }
	daemon_stop
	echo "$out"
}

: >"$T/d"; : >"$T/b"
for _ in $(seq "$RUNS"); do
	daemon_rtt >>"$T/d"
	"$TCPBENCH" echo-rtt "$N" >>"$T/b"
done
d50=$(cut -d' ' -f1 "$T/d" | median); d99=$(cut -d' ' -f2 "$T/d" | median)
b50=$(cut -d' ' -f1 "$T/b" | median); b99=$(cut -d' ' -f2 "$T/b" | median)
echo "keystroke round trip, $N per run, medians of $RUNS alternating runs (us, p50 p99):"
echo "  TCP echo baseline:         $b50 $b99   [$(paste -sd, "$T/b")]"
echo "  through the daemon+guest:  $d50 $d99   [$(paste -sd, "$T/d")]"
# added A B: what the daemon (and the guest's echo) adds, "+12.3us"
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1fus\n", a - b }'; }
row "keystroke rtt p50" "$d50" us "$b50" "$(added "$d50" "$b50")" "-"
row "keystroke rtt p99" "$d99" us "$b99" "$(added "$d99" "$b99")" "<+50us"
