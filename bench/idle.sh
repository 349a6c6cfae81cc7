#!/usr/bin/env bash
# bench/idle.sh - the daemon's cost while nothing happens: one device with
# a connected guest (the harness, after the handshake) and one TCP client,
# left alone for SECONDS.  Context switches (voluntary + involuntary, from
# /proc/PID/status) and CPU time (utime + stime, /proc/PID/stat) over the
# window: every periodic wakeup would show up as switches.
#
# usage: bench/idle.sh [SECONDS]      (default 5)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${1:-5}
need "$DAEMON" "$FRONTEND" "$TCPBENCH"
bench_tmp
trap 'touch "$T/done"; exec 7>&- 2>/dev/null; kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT

ctxsw() { awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"; }
# cpu_ticks: utime + stime, in clock ticks
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

port=$(free_port)
daemon_start --socket-path="$T/s" --backend=network --tcp-port="$port"
"$FRONTEND" --timeout=$((SECS + 30)) "$T/s0" init handshake write 'hello\r\n' \
	hold "$T/done" $((SECS + 30)) 2>"$T/fe.err" &
mkfifo "$T/in"
"$TCPBENCH" hold "$port" 1 <"$T/in" >"$T/client.out" &
exec 7>"$T/in"
# Start-up is over once the guest's line has reached the client.
wait_for "$T/client.out" '^served'
c0=$(ctxsw "$DPID"); t0=$(cpu_ticks "$DPID")
sleep "$SECS"
c1=$(ctxsw "$DPID"); t1=$(cpu_ticks "$DPID")
hz=$(getconf CLK_TCK)
sw=$((c1 - c0))
cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.0f", t * 1000 / hz }')
echo "idle for $SECS s with a guest and a client connected:"
echo "  context switches: $sw    CPU time: $cpu ms (ticks of $((1000 / hz)) ms)"
row "idle ${SECS}s: context switches" "$sw" ctxsw - - "<=2"
row "idle ${SECS}s: CPU time" "$cpu" ms - - "~0"
