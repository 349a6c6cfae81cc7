# bench/lib.sh - shared by the bench/ scripts (sourced, not run).
#
# Every benchmark prints its results as table rows through row(), so that
# bench/run.sh (make bench) can gather them into one table:
#
#   row NAME FIGURE UNIT BASELINE RATIO TARGET
#
# NAME      what was measured, e.g. "guest->host daemon"
# FIGURE    the daemon's figure, e.g. 812.4
# UNIT      MiB/s, us, ctxsw, KiB, ...
# BASELINE  the same measured without the daemon in this run, or "-"
# RATIO     FIGURE/BASELINE (or what the target compares), or "-"
# TARGET    the issue's target, e.g. ">=0.8x", "<=2", or "-"
#
# A row goes to stdout as one tab-separated line starting with "ROW";
# everything else a script prints is commentary for the reader.

DAEMON=${VC_DAEMON:-./vhost-device-console}
FRONTEND=${VC_FRONTEND:-tests/frontend}
TCPBENCH=${VC_TCPBENCH:-bench/tcpbench}

# bench_size MIB RUNS [ARG1 [ARG2]]: the run's size and count, from the
# script's arguments ARG1 and ARG2 or else the defaults MIB and RUNS; sets
# MIB, RUNS and SIZE (bytes).
bench_size() {
	MIB=${3:-$1}
	RUNS=${4:-$2}
	SIZE=$((MIB * 1048576))
}

# bench_tmp [KIND]: a fresh temp dir in $T (/tmp/vc-bench[-KIND].XXXXXX),
# and an EXIT trap that kills the script's background jobs and removes it.
# A script with more to undo sets its own trap after this.
bench_tmp() {
	T=$(mktemp -d "/tmp/vc-bench${1:+-$1}.XXXXXX")
	trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
}

# now_ns: the monotonic-enough wall clock, in nanoseconds.
now_ns() { date +%s%N; }

# wait_for FILE REGEX [SECONDS]: until FILE has a line matching REGEX.
wait_for() {
	local end=$(( $(date +%s) + ${3:-10} ))
	until grep -qE "$2" "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$end" ]; then
			echo "timed out waiting for '$2' in $1" >&2
			return 1
		fi
		sleep 0.01
	done
}

# median: of the numbers on stdin, one per line.
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# medians NAME...: for each NAME, the median of the series in $T/NAME
# (one figure a line, as the runs appended them) into the variable NAME.
medians() {
	local name
	for name; do
		printf -v "$name" '%s' "$(median <"$T/$name")"
	done
}

# runs FILE: the figures of FILE (one a line) on one line, for the reader
# to see the spread behind a median.
runs() { tr '\n' ' ' <"$1"; }

# free_port: a TCP port below the ephemeral range that nobody listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		(exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# ratio A B: A/B with two decimals, "-" if B is 0 or not a number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }

# mibs BYTES NS: MiB/s.
mibs() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f\n", b / 1048576 / (ns / 1e9) }'; }

row() { printf 'ROW\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }

# need FILE...: every one exists and is executable, or say what to build.
need() {
	local f
	for f; do
		[ -x "$f" ] || { echo "missing $f: run make $f" >&2; exit 1; }
	done
}

# daemon_start ARG...: the daemon with these arguments, its stderr in
# $T/daemon.log, once it says it is ready; sets DPID.  The last run's log
# goes first: its "ready" would let a client connect too early.
daemon_start() {
	rm -f "$T/daemon.log"
	"$DAEMON" "$@" 2>"$T/daemon.log" &
	DPID=$!
	wait_for "$T/daemon.log" 'ready: '
}

# daemon_stop: stop the daemon daemon_start started, and reap it.
daemon_stop() {
	kill "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
}

# The guest -> host runs with one fast reader: a history ring of WARM bytes
# and as many bytes written first and not timed.  By then the ring's pages
# are touched, as in a daemon that has run a while, and the reader has WARM
# bytes of slack before it would skip (which voids a figure): on two shared
# CPUs a reader is at times descheduled for the few ms the harness needs
# to write 8 MiB.  (A history as big as the run would time its page faults.)
WARM=$((32 * 1048576))
