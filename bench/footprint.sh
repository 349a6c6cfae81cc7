#!/usr/bin/env bash
# bench/footprint.sh - what the daemon costs in memory: private memory
# (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup; guest memory is
# the frontend's, shared, and does not count) with 1, 16, 32 and 64 devices,
# each with a guest connected (the harness, after the handshake and a line
# of output) and a TCP client; then the cost per device, and the binary's
# size (dynamic, and static against musl when musl-gcc is there).
#
# usage: bench/footprint.sh [COUNTS...]      (default 1 16 32 64)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
COUNTS=${*:-1 16 32 64}
need "$DAEMON" "$FRONTEND" "$TCPBENCH"
bench_tmp
trap 'touch "$T/done"; kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT

private_kib() { awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n }' "/proc/$1/smaps_rollup"; }

# footprint N: private KiB of a daemon serving N connected devices.
footprint() {
	local n=$1 port d kib
	# N consecutive TCP ports, all free
	while :; do
		port=$((20000 + RANDOM % 9000))
		for d in $(seq 0 $((n - 1))); do
			(exec 9<>"/dev/tcp/127.0.0.1/$((port + d))") 2>/dev/null && continue 2
		done
		break
	done
	rm -f "$T/done"
	daemon_start --socket-path="$T/s" --socket-count="$n" --backend=network \
		--tcp-port="$port"
	for d in $(seq 0 $((n - 1))); do
		"$FRONTEND" --timeout=60 "$T/s$d" init handshake write "device $d\r\n" \
			hold "$T/done" 60 2>"$T/fe$d.err" &
	done
	mkfifo "$T/in$n"
	"$TCPBENCH" hold "$port" "$n" <"$T/in$n" >"$T/client.out" &
	exec 7>"$T/in$n"
	# every guest's line reached its client: all connected and served
	wait_for "$T/client.out" '^served' 30
	kib=$(private_kib "$DPID")
	touch "$T/done"
	exec 7>&-
	daemon_stop
	wait
	echo "$kib"
}

echo "private memory with every device connected to a guest and a client:"
prev_n=; prev_k=; first_k=
for n in $COUNTS; do
	k=$(footprint "$n")
	per=-
	if [ -n "$prev_n" ]; then
		per=$(awk -v a="$k" -v b="$prev_k" -v n="$n" -v m="$prev_n" 'BEGIN { printf "%.1f", (a - b) / (n - m) }')
	fi
	echo "  $n device(s): $k KiB   (per device since the last: $per KiB)"
	[ -n "$first_k" ] || first_k=$k
	if [ "$n" = 1 ]; then
		row "private memory, 1 device" "$k" KiB - - "<1024"
	else
		row "private memory, $n devices" "$k" KiB "-" "${per}/dev" "linear"
	fi
	prev_n=$n; prev_k=$k
done
size=$(wc -c <"$DAEMON")
echo "binary: $size bytes (dynamic, $(file -b "$DAEMON" 2>/dev/null | cut -d, -f1-2))"
row "binary size, dynamic" $((size / 1024)) KiB - - -
if command -v musl-gcc >/dev/null 2>&1 && make -s vhost-device-console.static >/dev/null 2>&1; then
	ssize=$(wc -c <vhost-device-console.static)
	echo "binary: $ssize bytes (static, musl)"
	row "binary size, static musl" $((ssize / 1024)) KiB - - -
fi
