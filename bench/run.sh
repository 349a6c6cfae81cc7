#!/usr/bin/env bash
# bench/run.sh - `make bench`: every benchmark in bench/, each bounded to
# about a minute, then ONE table of their ROW lines (bench/lib.sh): the
# figure, its baseline from the same run, the ratio and the issue's target.
# Each script's own lines are kept above the table as commentary.
# bench/guest.sh (a real guest) runs too when it is there.
#
# usage: bench/run.sh [SCRIPT...]      (default: all of them)
set -eu
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/vc-bench-run.XXXXXX)
trap 'rm -rf "$T"' EXIT

scripts=${*:-bench/throughput.sh bench/latency.sh bench/idle.sh bench/footprint.sh bench/slow-client.sh bench/trace.sh}
[ $# -eq 0 ] && [ -f bench/guest.sh ] && scripts="$scripts bench/guest.sh"
status=0
for s in $scripts; do
	echo "== $s"
	if ! bash "$s" | tee -a "$T/out" | grep -v '^ROW'; then
		echo "$s FAILED" >&2
		status=1
	fi
done
echo
echo "== $(uname -srm), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
{
	printf 'what\tfigure\tunit\tbaseline\tratio\ttarget\n'
	grep '^ROW' "$T/out" | cut -f2-
} | column -t -s "$(printf '\t')"
exit "$status"
