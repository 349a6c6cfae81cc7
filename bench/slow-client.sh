#!/usr/bin/env bash
# bench/slow-client.sh - does a client that stops reading slow down one
# that reads?  The harness (tests/frontend) plays a guest writing SIZE
# bytes through the console as fast as the daemon completes its buffers;
# a fast client reads them over TCP.  Baseline: the fast client alone.
# Then the same with a second client connected that never reads.  Runs
# alternate (RUNS each) and the medians are compared: the ratio should be
# about 1.0.
#
# usage: bench/slow-client.sh [SIZE_MIB] [RUNS]      (defaults 32 and 5)
# Needs: make vhost-device-console tests/frontend tests/clients
set -eu
cd "$(dirname "$0")/.."
MIB=${1:-32}
RUNS=${2:-5}
SIZE=$((MIB * 1048576))
DAEMON=${VC_DAEMON:-./vhost-device-console}
T=$(mktemp -d /tmp/vc-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

for f in "$DAEMON" tests/frontend tests/clients; do
	[ -x "$f" ] || { echo "missing $f: run make $f" >&2; exit 1; }
done

# now_ns: monotonic enough for runs of a second or more.
now_ns() { date +%s%N; }

# wait_for FILE REGEX: until FILE has a line matching REGEX (10 s at most).
wait_for() {
	local end=$(( $(date +%s) + 10 ))
	until grep -qE "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -lt "$end" ] || { echo "timed out waiting for '$2' in $1" >&2; exit 1; }
		sleep 0.01
	done
}

# one_run STALLED(0|1): MiB/s the fast client saw.
one_run() {
	local stalled=$1 port start end stall_pid=
	port=$((20000 + RANDOM % 10000))
	rm -f "$T/s0" "$T/daemon.log"
	# the fast client must never fall out of the ring: a big history
	"$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$port" \
		--history=$((8 * 1048576)) 2>"$T/daemon.log" &
	local dpid=$!
	wait_for "$T/daemon.log" 'ready: '
	if [ "$stalled" = 1 ]; then
		tests/clients --timeout=0 --stall "127.0.0.1:$port" >"$T/stall.out" 2>&1 &
		stall_pid=$!
		wait_for "$T/stall.out" '^connected'
	fi
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	printf GO >&5
	start=$(now_ns)
	tests/frontend --timeout=60 "$T/s0" init handshake expect GO \
		write-bytes "$SIZE" --inflight=16 2>"$T/fe.err" &
	local fpid=$!
	head -c "$SIZE" <&5 >/dev/null
	end=$(now_ns)
	exec 5>&-
	wait "$fpid" || { echo "frontend failed: $(cat "$T/fe.err")" >&2; exit 1; }
	[ -n "$stall_pid" ] && kill "$stall_pid" 2>/dev/null
	kill "$dpid"; wait "$dpid" 2>/dev/null || true
	if grep -q "127.0.0.1:.* is not reading" "$T/daemon.log" && [ "$stalled" = 0 ]; then
		echo "the fast client fell behind: the figure is not valid" >&2
		exit 1
	fi
	awk -v b="$SIZE" -v ns=$((end - start)) 'BEGIN { printf "%.1f\n", b / 1048576 / (ns / 1e9) }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$T/alone"; : >"$T/with"
for _ in $(seq "$RUNS"); do
	one_run 0 >>"$T/alone"
	one_run 1 >>"$T/with"
done
alone=$(median <"$T/alone")
with=$(median <"$T/with")
echo "guest -> fast TCP client, $MIB MiB, median of $RUNS runs each (alternating):"
echo "  fast client alone (baseline):        $alone MiB/s   [$(tr '\n' ' ' <"$T/alone")]"
echo "  with a client that never reads:      $with MiB/s   [$(tr '\n' ' ' <"$T/with")]"
awk -v a="$alone" -v w="$with" 'BEGIN { printf "  ratio with/alone: %.2f (1.00 = not slowed at all)\n", w / a }'
