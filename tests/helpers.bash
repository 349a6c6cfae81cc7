# Shared helpers for the bats suite.  Every test gets its own temp dir ($T),
# waits on conditions with deadlines (never fixed sleeps), and kills what it
# started in teardown.

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
DAEMON=${VC_DAEMON:-$TOP/vhost-device-console}
# VC_WRAP: a command the daemon runs under, e.g. valgrind (make check-valgrind).
WRAP=${VC_WRAP:-}
# VC_TESTBIN: where the test programs are (make check-arch: build/ARCH/tests).
# VC_EMU: the emulator they run under, e.g. qemu-s390x (binfmt_misc is not
# assumed).  Each program is then reached through a two-line script that
# execs it under VC_EMU, so that "$FRONTEND" stays one word that works in
# run, in pipelines and in the background (where $! must be the program).
TESTBIN=${VC_TESTBIN:-$TOP/tests}
EMU=${VC_EMU:-}

# test_program NAME: the path to run test program NAME by.
test_program() {
	local w
	[ -n "$EMU" ] || { echo "$TESTBIN/$1"; return; }
	w=${BATS_RUN_TMPDIR:-/tmp}/emu/$1
	if [ ! -x "$w" ]; then
		mkdir -p "${w%/*}"
		printf '#!/bin/sh\nexec %s %s "$@"\n' "$EMU" "$TESTBIN/$1" >"$w.$$"
		chmod +x "$w.$$" && mv -f "$w.$$" "$w"
	fi
	echo "$w"
}

FRONTEND=$(test_program frontend)
PTYRUN=$(test_program ptyrun)

# Processes to kill in teardown (pids, appended by the helpers).
BG_PIDS=()

common_setup() {
	T=$(mktemp -d "${BATS_TMPDIR:-/tmp}/vc.XXXXXX")
	export T
}

common_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${BG_PIDS[@]}"; do
		wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true
	done
	# Sanitizer and valgrind reports land in the daemon log: fail loudly
	# on any (valgrind -q prints nothing else).
	if [ -f "$T/daemon.log" ] && grep -qE 'Sanitizer|^==[0-9]+== ' "$T/daemon.log"; then
		cat "$T/daemon.log" >&3
		rm -rf "$T"
		return 1
	fi
	rm -rf "$T"
}

# wait_until, wait_log, wait_gone, free_port: shared with the scripts that
# run outside bats (tests/soak.sh, bench/guest.sh).
# shellcheck source=tests/wait.sh
. "$TOP/tests/wait.sh"

# start_daemon ARGS...: run the daemon in the background, stderr to
# $T/daemon.log, and wait for its "ready" line.  Sets DAEMON_PID.
start_daemon() {
	# shellcheck disable=SC2086 # WRAP is a command line
	$WRAP "$DAEMON" "$@" </dev/null >"$T/daemon.out" 2>"$T/daemon.log" 3>&- &
	DAEMON_PID=$!
	BG_PIDS+=("$DAEMON_PID")
	if ! wait_log "$T/daemon.log" 'ready: ' 30; then
		echo "daemon did not become ready; its log:" >&2
		cat "$T/daemon.log" >&2
		return 1
	fi
}

# stop_daemon: SIGTERM, wait (bounded), and set DAEMON_RC to the exit
# status.  Call it directly, not in $(...): only this shell can wait.
stop_daemon() {
	kill -TERM "$DAEMON_PID"
	if ! wait_gone "$DAEMON_PID" 5; then
		echo "daemon ignored SIGTERM" >&2
		DAEMON_RC=killed
		return 1
	fi
	DAEMON_RC=0
	wait "$DAEMON_PID" || DAEMON_RC=$?
}

# ---- with the frontend harness (tests/frontend) ----

# start_one: one device on $T/s0, its console on TCP $PORT.
start_one() {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT"
}

# start_two: devices on $T/s0 and $T/s1, consoles on $PORT and $PORT+1.
start_two() {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --socket-count=2 --backend=network \
		--tcp-port="$PORT"
}

# fe SOCKET STEP...: run the frontend; on failure show why and the log.
fe() {
	run "$FRONTEND" "$@"
	if [ "$status" -ne 0 ]; then
		echo "frontend $* -> status $status: $output"
		echo "--- daemon log:"
		cat "$T/daemon.log"
		return 1
	fi
}

# show_logs: what the frontends said, and the daemon log.
show_logs() {
	local f
	for f in "$T"/*.err; do
		[ -s "$f" ] && echo "--- $(basename "$f"): $(cat "$f")"
	done
	echo "--- daemon log:"
	cat "$T/daemon.log"
}

# read_line FD WANT: the next line on FD (within 10 s) is WANT.
# read_until_line FD TEXT: read lines until one ends with TEXT, skipping
# what comes before (a console's history replayed to a new client), 10 s.
read_until_line() {
	local line= end=$(( $(date +%s) + 10 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		IFS= read -t 10 -r line <&"$1" 2>/dev/null || continue
		[[ "$line" == *"$2" ]] && return 0
	done
	echo "no line '$2' on fd $1 within 10 s"
	show_logs
	return 1
}

# A line the daemon adds to a console client's stream, not the guest's: a
# notice, "[vhost-device-console: frontend connected]\r\n", or the "\r"
# left of the "\r\n" that goes before it to end the guest's unfinished
# line when the rest of that line was read already.  read_line passes over
# them unless they are what it waits for.
is_notice_line() {
	[[ "$1" == $'\r' || "$1" =~ ^\[vhost-device-console:\ [^]]*\]$'\r'$ ]]
}

# read_notices FD TEXT...: the next lines on FD are the daemon's notices
# "[vhost-device-console: TEXT]", one per TEXT, in order (10 s).
read_notices() {
	local fd=$1 line; shift
	while [ $# -gt 0 ]; do
		read -t 10 -r line <&"$fd" || true
		[ "$line" = "[vhost-device-console: $1]"$'\r' ] ||
			{ echo "read '$line' on fd $fd, want the notice '$1'"; show_logs; return 1; }
		shift
	done
}

# notices TEXT...: the bytes of the daemon's notices, one per TEXT, as a
# console client gets them at the start of a line.
notices() {
	local text
	for text; do
		printf '[vhost-device-console: %s]\r\n' "$text"
	done
}

# cut_after_line TEXT FILE: FILE ends with its first line TEXT.  A reader
# that stops there (clients --until) may have got more in its last read:
# the notices of the frontend leaving.
cut_after_line() {
	local off
	off=$(grep -a -b -o -x -F -- "$1" "$2" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || { echo "no line '$1' in $2"; return 1; }
	truncate -s $((off + ${#1} + 1)) "$2"
}

read_line() {
	local line=
	while read -t 10 -r line <&"$1" && [ "$line" != "$2" ] &&
		is_notice_line "$line"; do
		:
	done
	[ "$line" = "$2" ] && return 0
	echo "read '$line' on fd $1, want '$2'"
	show_logs
	return 1
}

# ---- with a browser (tests/browser: node, playwright-core, chromium) ----

# Where the browser tests keep their screenshots.
ARTEFACTS=${VC_ARTEFACTS:-$TOP/tests/artefacts}

# need_browser ASSETS: skip the test unless node, chromium, xterm.js (in
# ASSETS) and playwright-core are all there.
need_browser() {
	command -v node >/dev/null || skip "no node (nodejs)"
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "no chromium (package chromium)"
	[ -f "$1/lib/xterm.js" ] || skip "no xterm.js (make web-assets)"
	[ -d "$TOP/tests/browser/node_modules/playwright-core" ] ||
		skip "no playwright-core (make browser-deps)"
}

# guest_start ARG...: the harness with ARGs in the background, as the
# guest a browser talks to; its stderr in $T/fe.err.  Sets GUEST_PID.
guest_start() {
	"$FRONTEND" "$@" 2>"$T/fe.err" 3>&- &
	GUEST_PID=$!
	BG_PIDS+=("$GUEST_PID")
}

# guest_passed: the guest_start guest exited 0; else its stderr is shown.
guest_passed() {
	wait "$GUEST_PID" || { cat "$T/fe.err"; return 1; }
}

# run_page SECONDS SCRIPT ARG...: node runs the page driver SCRIPT with
# ARGs, bounded by SECONDS, once $ARTEFACTS exists for its screenshot; its
# output goes to the test's log and to the TAP stream (the reader sees what
# the page did), and the test fails unless it exited 0.
run_page() {
	local secs=$1
	shift
	mkdir -p "$ARTEFACTS"
	run timeout "$secs" node "$@"
	echo "$output"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}

# status_has TEXT: a new SIGUSR1 status line of console 0 has TEXT.
status_has() {
	local before
	before=$(grep -c "status:   console 0 " "$T/daemon.log" || true)
	kill -USR1 "$DAEMON_PID"
	wait_until 10 eval '[ "$(grep -c "status:   console 0 " "$T/daemon.log")" -gt "$before" ]' ||
		return 1
	grep "status:   console 0 " "$T/daemon.log" | tail -1 | grep -qF -- "$1"
}

# refute CMD...: CMD fails.  (A bare `! CMD` never fails a bats test:
# errexit ignores a negated command.)
refute() {
	if "$@"; then
		echo "unexpectedly true: $*"
		return 1
	fi
}

# fsize_daemon ARGS...: the daemon with files limited to 1 KiB and
# SIGXFSZ ignored (inherited across exec), so a write past 1 KiB fails
# with EFBIG.  Use as `local DAEMON=fsize_daemon WRAP=`: not under
# VC_WRAP, whose tool the limit would hit too.
REAL_DAEMON=$DAEMON
fsize_daemon() {
	trap '' XFSZ
	ulimit -f 1 || return 1
	exec "$REAL_DAEMON" "$@"
}
