#!/usr/bin/env bash
# tests/soak.sh - the long soak (`make soak`; tests/soak.bats runs a short one).
#
# One daemon (network backend, one device) goes through
#   (a) SOAK_FRONTEND_CYCLES (default 1000) frontend connections, in turn:
#       0  a whole session: init handshake write close (the init options
#          rotate: eventfds, pipes, no EVENT_IDX, ADD_MEM_REG),
#       1  proto-truncated: connections closed mid-header and mid-payload,
#       2  a frontend killed (SIGKILL) while write-bytes runs the rings,
#       3  a raw connection that sends half a message header and closes;
#   (b) SOAK_CLIENT_CYCLES (default 10000) TCP client connects
#       (tests/clients --cycles: most closed with a reset, every 10th with
#       an orderly shutdown, after which the daemon must close it),
# while one TCP client reads the console all along.  The daemon's open fds
# (/proc/PID/fd) and memory (VmRSS; Private_Clean + Private_Dirty from
# smaps_rollup) are taken after the first round (one cycle of each kind,
# the killed one with the reader stopped until its queue overflows, and 100
# client connects) and at the end, each time once the daemon has
# seen every frontend go away.  It fails if the fd count differs, if memory
# grew beyond the tolerance below, if the daemon does not exit 0 on SIGTERM,
# or if "Sanitizer" appears in its log.
#
# Environment: VC_DAEMON (default ./vhost-device-console from the top
# directory, wherever the script is run from; the ASan build
# vhost-device-console.asan works too), SOAK_FRONTEND_CYCLES,
# SOAK_CLIENT_CYCLES, SOAK_KEEP=1 keeps the temp dir.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
DAEMON=${VC_DAEMON:-$TOP/vhost-device-console}
FRONTEND=$TOP/tests/frontend
CLIENTS=$TOP/tests/clients
FE_CYCLES=${SOAK_FRONTEND_CYCLES:-1000}
CL_CYCLES=${SOAK_CLIENT_CYCLES:-10000}

# Memory tolerance, in KiB, for VmRSS and for Private_Dirty (the heap,
# stacks: where a leak shows).  Private_Clean is printed in the private
# total but not checked: it counts file pages that only this process maps,
# so it moves when other processes map or unmap the same libc pages.
#
# What the daemon holds for good is allocated in the first round: the
# console's backlog and the 64 KiB queue of each client slot used (kept
# with the slot), glibc's arena.  The first round makes the reader's queue
# overflow once, so all its pages are in use.  Guest memory is mapped only
# while a frontend is connected, and every measurement waits until none
# is.  What may still move after the first round: the free top of the heap,
# which glibc hands back only past its 128 KiB trim threshold, a queue's
# pages touched for the first time (64 KiB), and a page or two of stack.
# 256 KiB covers that.  A leak is per cycle, so the long soak is the leak
# test: 256 KiB is 26 bytes per client connect over 10000, or 262 bytes
# per frontend session over 1000; `make check`'s short run (500 and 50)
# only catches leaks of half a KiB per connect or 5 KiB per session.  A
# leaked fd is caught at any length.
#
# Under ASan, freed memory sits in the allocator's quarantine (256 MiB) and
# RSS grows with every free, leak or not: there the figures are printed but
# not checked, and LeakSanitizer's report at exit (it lands in the log, and
# "Sanitizer" fails the run) is the leak check.
MEM_TOLERANCE_KB=256

T=$(mktemp -d "${TMPDIR:-/tmp}/vc-soak.XXXXXX")
DAEMON_PID=
READER_PID=
FE_PID=
START_NS=$(date +%s%N)

say() { printf 'soak: %s\n' "$*"; }

cleanup() {
	local p
	for p in $FE_PID $READER_PID $DAEMON_PID; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null
	if [ "${SOAK_KEEP:-0}" = 1 ]; then
		say "kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM PIPE

die() {
	say "FAIL: $*" >&2
	if [ -f "$T/daemon.log" ]; then
		echo "--- last lines of the daemon log:" >&2
		tail -n 20 "$T/daemon.log" >&2
	fi
	exit 1
}

# wait_until, free_port: the bats suite's own (tests/helpers.bash).
# shellcheck source=tests/wait.sh
. "$TOP/tests/wait.sh"

count_lines() { grep -c -- "$1" "$T/daemon.log" 2>/dev/null; }
fd_count() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
wchar() { awk '/^wchar:/ { print $2 }' "/proc/$DAEMON_PID/io"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
private_kb() {
	awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s + 0 }' \
		"/proc/$DAEMON_PID/smaps_rollup"
}
dirty_kb() { awk '/^Private_Dirty:/ { print $2 }' "/proc/$DAEMON_PID/smaps_rollup"; }

# Every frontend the daemon accepted, it has seen go away.
frontends_gone() {
	[ "$(count_lines 'frontend connected on')" = "$(count_lines 'waiting for a new one')" ]
}

# Set by measure (printf -v).
FDS_first='' RSS_first='' PRIV_first='' DIRTY_first=''
FDS_end='' RSS_end='' PRIV_end='' DIRTY_end=''

# measure NAME [FDS]: settle (every frontend gone; and the fd count back
# to FDS, if given, within 10 s), then FDS_NAME, RSS_NAME, PRIV_NAME,
# DIRTY_NAME.
measure() {
	wait_until 10 frontends_gone || die "the daemon did not see the last frontend go"
	SETTLE_FDS=${2:-}
	[ -n "$SETTLE_FDS" ] && wait_until 10 eval '[ "$(fd_count)" = "$SETTLE_FDS" ]'
	kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon died"
	printf -v "FDS_$1" %s "$(fd_count)"
	printf -v "RSS_$1" %s "$(rss_kb)"
	printf -v "PRIV_$1" %s "$(private_kb)"
	printf -v "DIRTY_$1" %s "$(dirty_kb)"
}

# ---- the cycles ---------------------------------------------------------------

fe() {
	"$FRONTEND" "$@" 2>"$T/fe.err" 3>&- ||
		die "frontend $* failed: $(cat "$T/fe.err")"
}

# fe_killed I [flood]: a frontend killed while write-bytes runs: once 64 KiB
# went out to the reader, or with "flood", once the reader, stopped for the
# while, had its queue overflow (so every page of the queue is in use).
fe_killed() {
	local w0
	w0=$(wchar)
	[ "${2:-}" = flood ] && kill -STOP "$READER_PID"
	"$FRONTEND" --timeout=60 "$T/s0" init handshake write-bytes 1000000000 \
		2>"$T/fe.err" 3>&- &
	FE_PID=$!
	if [ "${2:-}" = flood ]; then
		flowing() { grep -q "client $READER is not reading" "$T/daemon.log" || ! kill -0 "$FE_PID"; }
	else
		flowing() { [ "$(wchar)" -gt $((w0 + 65536)) ] || ! kill -0 "$FE_PID"; }
	fi
	wait_until 10 flowing || die "cycle $1: no data flowed within 10 s"
	kill -0 "$FE_PID" 2>/dev/null || die "cycle $1: the frontend ended early: $(cat "$T/fe.err")"
	kill -KILL "$FE_PID"
	wait "$FE_PID" 2>/dev/null
	FE_PID=
	if [ "${2:-}" = flood ]; then
		kill -CONT "$READER_PID"
		wait_until 10 grep -q "client $READER caught up" "$T/daemon.log" ||
			die "the reader did not catch up"
	fi
}

# Half of a GET_FEATURES header (request 1, flags 1), then close.  The
# daemon may be refusing connections until it has seen the previous
# frontend go; either way socat's status does not matter.
fe_raw_partial() {
	printf '\001\000\000\000\001\000' |
		socat -u - "UNIX-CONNECT:$T/s0" 2>/dev/null 3>&- || true
}

fe_cycle() {
	local i=$1 opts=
	case $(( i / 4 % 4 )) in
	1) opts=--pipes ;;
	2) opts=--no-event-idx ;;
	3) opts=--add-mem-reg ;;
	esac
	case $(( i % 4 )) in
	0) fe "$T/s0" init $opts handshake write "soak cycle $i\n" close ;;
	1) fe "$T/s0" proto-truncated ;;
	2) if [ "$i" = 2 ]; then fe_killed "$i" flood; else fe_killed "$i"; fi ;;
	3) fe_raw_partial ;;
	esac
}

# ---- run ----------------------------------------------------------------------

[ -x "$DAEMON" ] || die "no daemon binary $DAEMON (VC_DAEMON)"
{ [ -x "$FRONTEND" ] && [ -x "$CLIENTS" ]; } || die "build tests/frontend and tests/clients first"
command -v socat >/dev/null || die "socat is not installed"
ASAN=0
grep -q -a __asan_init "$DAEMON" && ASAN=1

# A port can still be taken between free_port and bind(): try another.
for attempt in 1 2 3 4 5; do
	PORT=$(free_port) || die "no free port"
	"$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$PORT" \
		</dev/null >"$T/daemon.out" 2>"$T/daemon.log" 3>&- &
	DAEMON_PID=$!
	started() { grep -q ': ready: ' "$T/daemon.log" 2>/dev/null || ! kill -0 "$DAEMON_PID"; }
	wait_until 10 started && kill -0 "$DAEMON_PID" 2>/dev/null && break
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	grep -q 'Address already in use' "$T/daemon.log" && [ "$attempt" -lt 5 ] ||
		die "the daemon did not become ready"
done
say "daemon $DAEMON (pid $DAEMON_PID$([ $ASAN = 1 ] && echo ', ASan'))," \
	"$FE_CYCLES frontend cycles, $CL_CYCLES client connects"

# The reader: one client that reads everything, all along.
"$CLIENTS" --timeout=0 --read /dev/null "127.0.0.1:$PORT" >"$T/reader.out" 2>"$T/reader.err" 3>&- &
READER_PID=$!
wait_until 10 grep -q '^connected' "$T/reader.out" 2>/dev/null || die "the reader did not connect"
READER=$(sed -n 's/^connected //p' "$T/reader.out")
wait_until 10 grep -q "client $READER connected" "$T/daemon.log" ||
	die "the daemon did not accept the reader"

# The first round: one cycle of each kind, and 100 client connects.
first=$(( FE_CYCLES < 4 ? FE_CYCLES : 4 ))
for (( i = 0; i < first; i++ )); do fe_cycle "$i"; done
"$CLIENTS" --cycles 100 --orderly-every 10 "127.0.0.1:$PORT" >/dev/null ||
	die "client cycles failed"
measure first
T1=$(date +%s%N)

for (( i = first; i < FE_CYCLES; i++ )); do
	fe_cycle "$i"
	(( (i + 1) % 250 == 0 )) && say "$((i + 1)) frontend cycles, $(fd_count) fds, VmRSS $(rss_kb) kB"
done
T2=$(date +%s%N)
"$CLIENTS" --cycles "$CL_CYCLES" --orderly-every 10 "127.0.0.1:$PORT" \
	>"$T/cycles.out" || die "client cycles failed"
T3=$(date +%s%N)
measure end "$FDS_first"

kill -0 "$READER_PID" 2>/dev/null || die "the reader stopped: $(cat "$T/reader.err")"
say "frontend cycles: $(( (T2 - T1) / 1000000 )) ms; client connects: $(( (T3 - T2) / 1000000 )) ms ($(cat "$T/cycles.out"))"
say "after the first round: fds $FDS_first, VmRSS $RSS_first kB, private $PRIV_first kB (dirty $DIRTY_first kB)"
say "at the end:            fds $FDS_end, VmRSS $RSS_end kB, private $PRIV_end kB (dirty $DIRTY_end kB)"

fail=
[ "$FDS_end" = "$FDS_first" ] || fail="fd count went from $FDS_first to $FDS_end"
if [ $ASAN = 0 ]; then
	(( RSS_end - RSS_first > MEM_TOLERANCE_KB )) &&
		fail="${fail:+$fail; }VmRSS grew by $((RSS_end - RSS_first)) kB (tolerance $MEM_TOLERANCE_KB)"
	(( DIRTY_end - DIRTY_first > MEM_TOLERANCE_KB )) &&
		fail="${fail:+$fail; }private dirty memory grew by $((DIRTY_end - DIRTY_first)) kB (tolerance $MEM_TOLERANCE_KB)"
else
	say "ASan build: memory growth not checked (quarantine); LeakSanitizer checks at exit"
fi

# SIGTERM: exit 0, the reader sees EOF, and no sanitizer report.
kill -TERM "$DAEMON_PID"
wait_until 10 eval '! kill -0 $DAEMON_PID 2>/dev/null' || die "the daemon ignored SIGTERM"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
[ "$rc" = 0 ] || fail="${fail:+$fail; }the daemon exited $rc on SIGTERM"
grep -q Sanitizer "$T/daemon.log" && {
	cat "$T/daemon.log" >&2
	fail="${fail:+$fail; }a sanitizer report in the daemon log"
}
rc=0
wait "$READER_PID" || rc=$?
READER_PID=
[ "$rc" = 0 ] || fail="${fail:+$fail; }the reader: $(cat "$T/reader.err")"

[ -z "$fail" ] || die "$fail"
say "ok in $(( ($(date +%s%N) - START_NS) / 1000000 )) ms"
