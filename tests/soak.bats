#!/usr/bin/env bats
# The soak in short: tests/soak.sh (`make soak` runs it with 1000 frontend
# cycles and 10000 client connects) with 50 and 500.  The daemon must end
# with the fd count it had after the first round, its memory within the
# script's tolerance of what it was then, exit 0 on SIGTERM, and no
# sanitizer report in its log.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# figure LABEL FIELD: a number from the script's "LABEL: fds N, VmRSS N kB,
# private N kB (dirty N kB)" line; FIELD is fds, VmRSS or dirty.
figure() {
	sed -n "s/^soak: $1 *:.*$2 \([0-9]*\).*/\1/p" <<<"$output"
}

@test "soak: 50 frontend cycles, 500 client connects leave fds and memory as they were" {
	run env VC_DAEMON="$DAEMON" SOAK_FRONTEND_CYCLES=50 SOAK_CLIENT_CYCLES=500 \
		bash "$TOP/tests/soak.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	local fds1 fds2 rss1 rss2 dirty1 dirty2 tol
	fds1=$(figure 'after the first round' fds)
	fds2=$(figure 'at the end' fds)
	rss1=$(figure 'after the first round' VmRSS)
	rss2=$(figure 'at the end' VmRSS)
	dirty1=$(figure 'after the first round' dirty)
	dirty2=$(figure 'at the end' dirty)
	tol=$(sed -n 's/^MEM_TOLERANCE_KB=\([0-9]*\)$/\1/p' "$TOP/tests/soak.sh")
	[ -n "$fds1" ] && [ -n "$rss2" ] && [ -n "$dirty2" ] && [ -n "$tol" ]
	[ "$fds2" -eq "$fds1" ]
	# the ASan build's quarantine grows with every free: the script does
	# not check memory there, LeakSanitizer does at exit
	if [[ "$output" != *"ASan build"* ]]; then
		[ $((rss2 - rss1)) -le "$tol" ]
		[ $((dirty2 - dirty1)) -le "$tol" ]
	fi
}
