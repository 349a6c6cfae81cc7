# User-mode Linux guest for the bats suite: a real Linux 6.1 guest whose
# virtio_uml driver is the vhost-user frontend of the daemon under test.
# Load it after the common helpers:
#
#     load helpers
#     load uml
#
# and call common_setup first (the functions use $T and BG_PIDS).
#
# Functions
#   uml_rootfs DIR      Build a hostfs root in DIR with tests/uml-root.sh
#                       (busybox-static, the virtio_console module and its
#                       dependencies, /init from tests/uml-init; see its
#                       header).  The tree is built once per bats run under
#                       $BATS_RUN_TMPDIR and hard-linked into DIR (about
#                       50 ms; the first build about 0.2 s); /init is copied.
#   uml_boot SOCK [KERNEL-ARG...]
#                       Start linux.uml in the background as the vhost-user
#                       frontend of the console backend listening on SOCK
#                       (virtio_uml.device=SOCK:3), root $UML_ROOT (default
#                       $T/root, built with uml_rootfs when missing), its
#                       console to $T/uml.log, stdin /dev/null, in its own
#                       session and process group (it forks helpers), with
#                       uml_dir=$T/uml and TMPDIR=$UML_TMPDIR (default $T).
#                       Sets UML_PID (also the process group id) and appends
#                       it to BG_PIDS.  Extra arguments go on the kernel
#                       command line.  Paths must not contain spaces or ','.
#   uml_wait_ready [SECONDS]
#                       Wait (default 60 s) until the guest prints
#                       $UML_READY_MARKER ("UML-MARKER: HVC0-READY"):
#                       virtio_console loaded, the console port vport*p0
#                       exists and /dev/hvc0 opens,
#                       and a shell (PS1 'uml# ') is being started on hvc0.
#                       Fails at once if the guest reports HVC0-FAILED or
#                       UML exits; on failure prints $T/uml.log to stderr.
#   uml_stop [SECONDS]  Stop UML and every process it forked: first a clean
#                       guest shutdown (creates ROOT/.uml-poweroff, which
#                       /init polls; ~0.3 s), after 3 s SIGTERM to the main
#                       process (UML kills its helpers and exits), after
#                       SECONDS more (default 10) SIGKILL to the whole
#                       process group; then waits (5 s at most) until no
#                       process of the group is left, else fails.  Safe to
#                       call twice or when nothing was started; call it
#                       from teardown before common_teardown.
#   uml_alive           True while any process of the UML group exists.
#
#   Talking to the guest shell over the daemon's TCP console (network
#   backend); everything received is appended to $UML_CON_OUT:
#   uml_con_open PORT   Connect fd 5 to 127.0.0.1:PORT and start a reader
#                       that copies what arrives to a new file
#                       $T/con.N.out (UML_CON_OUT).
#   uml_con_send STRING Send STRING (printf %b: "\n", "\003" work).
#   uml_con_expect_line TEXT [SECONDS]
#                       Wait (default 15 s) for a line consisting of exactly
#                       TEXT (a trailing CR allowed) in $UML_CON_OUT; on
#                       timeout print what was received and fail.
#   uml_con_close       Disconnect (stop the reader, close fd 5).
#
#   uml_teardown WHAT REGEX
#                       The teardown of a suite whose tests boot a guest:
#                       uml_con_close, uml_stop; with UML_KEEP_LOGS=DIR the
#                       test's logs and received data copied to
#                       DIR/<test number>/; if the test failed, daemon.log
#                       and the lines of uml.log matching REGEX (titled
#                       "uml.log (WHAT)") on stderr; then common_teardown.
#                       Fails if uml_stop or common_teardown did.
#
# Settings (environment): UML_BIN (linux.uml), UML_BUSYBOX (busybox from
# PATH), UML_MODDIR (/usr/lib/uml/modules), UML_MODULES ("virtio_console"),
# UML_MEM (64M), UML_PORT_WAIT (seconds the guest waits for its console
# port, 30), UML_TMPDIR ($T; must allow exec), UML_ROOT ($T/root).
#
# The guest (tests/uml-init) prints its own lines to $T/uml.log prefixed
# "UML-": markers, and the kernel's virtio/hvc lines once the port is up (or
# with a dmesg tail when it is not).  Kernel parameters it reads:
# uml_wait=SECONDS, uml_tty=NAME (shell on /dev/NAME instead of hvc0; with
# UML_READY_MARKER='UML-MARKER: TTY-READY' and con1=fd:IN,fd:OUT this runs
# the guest without any backend, see the self-test in uml.bats).
#
# Shutting the guest down: `poweroff` (an alias for `poweroff -f`) in the
# guest shell, or creating ROOT/.uml-poweroff on the host; UML then exits
# with status 0.  uml_stop does the latter, then signals.

# The root builder (uml_root_tree, uml_root_init; also `make demo`'s).
# shellcheck source=uml-root.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/uml-root.sh"
UML_MEM=${UML_MEM:-64M}
UML_PORT_WAIT=${UML_PORT_WAIT:-30}
UML_READY_MARKER='UML-MARKER: HVC0-READY'
UML_FAIL_MARKER='UML-MARKER: HVC0-FAILED'
UML_PID=
UML_ROOT_DIR=
UML_CON_N=0
UML_CON_OUT=
UML_CON_READER=

uml_rootfs() {
	local dir=$1 cache tmp
	[ -n "$dir" ] || { echo "usage: uml_rootfs DIR" >&2; return 1; }
	mkdir -p "$dir" || return 1
	if [ -n "${BATS_RUN_TMPDIR:-}" ] && [ -d "$BATS_RUN_TMPDIR" ]; then
		uml_root_kver || return 1
		cache=$BATS_RUN_TMPDIR/uml-rootfs-$UML_KVER
		if [ ! -d "$cache" ]; then
			tmp=$cache.tmp.$$.$RANDOM
			uml_root_tree "$tmp" || { rm -rf "$tmp"; return 1; }
			# Parallel tests: the first rename wins, the others drop theirs.
			mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp"
		fi
		cp -al "$cache/." "$dir/" 2>/dev/null || cp -a "$cache/." "$dir/" || return 1
	else
		uml_root_tree "$dir" || return 1
	fi
	uml_root_init "$dir"
}

# _uml_group_pids PGID: pids of the live (not zombie) processes of a group.
_uml_group_pids() {
	local f stat rest
	local -a fields
	for f in /proc/[0-9]*/stat; do
		read -r stat <"$f" 2>/dev/null || continue
		rest=${stat##*) }
		read -r -a fields <<<"$rest"
		# fields: state ppid pgrp ...
		[ "${fields[2]}" = "$1" ] && [ "${fields[0]}" != Z ] && echo "${stat%% *}"
	done
	return 0
}

uml_alive() {
	[ -n "${UML_PID:-}" ] || return 1
	kill -0 "$UML_PID" 2>/dev/null && return 0
	[ -n "$(_uml_group_pids "$UML_PID")" ]
}

uml_boot() {
	local sock=$1; shift
	local root=${UML_ROOT:-$T/root} tmpdir=${UML_TMPDIR:-$T}
	local umid
	[ -n "$sock" ] || { echo "usage: uml_boot SOCK [KERNEL-ARG...]" >&2; return 1; }
	[ -f "$root/init" ] || uml_rootfs "$root" || return 1
	umid=uml-${T##*/}
	rm -f "$root/.uml-poweroff"
	mkdir -p "$T/uml"
	# setsid: own session and process group (UML forks helpers and, on
	# some exits, signals its whole group); as a non-leader background
	# child, setsid execs linux.uml directly, so $! is UML's pid and pgid.
	TMPDIR=$tmpdir setsid "$UML_BIN" mem="$UML_MEM" \
		rootfstype=hostfs rootflags="$root" rw init=/init \
		virtio_uml.device="$sock:3" \
		con=null ssl=null con0=null,fd:1 \
		uml_dir="$T/uml" umid="$umid" \
		printk.time=1 uml_wait="$UML_PORT_WAIT" "$@" \
		</dev/null >"$T/uml.log" 2>&1 3>&- &
	UML_PID=$!
	UML_ROOT_DIR=$root
	BG_PIDS+=("$UML_PID")
}

uml_wait_ready() {
	local limit=${1:-60}
	local end=$(( $(date +%s%N) + limit * 1000000000 ))
	local why
	while :; do
		if grep -qF "$UML_READY_MARKER" "$T/uml.log" 2>/dev/null; then
			return 0
		fi
		if grep -qF "$UML_FAIL_MARKER" "$T/uml.log" 2>/dev/null; then
			why="the guest found no console port"
			break
		fi
		if ! kill -0 "$UML_PID" 2>/dev/null; then
			why="UML exited"
			break
		fi
		if [ "$(date +%s%N)" -ge "$end" ]; then
			why="timeout after ${limit}s"
			break
		fi
		sleep 0.05
	done
	echo "uml_wait_ready: $why; $T/uml.log:" >&2
	cat "$T/uml.log" >&2
	return 1
}

uml_stop() {
	local limit=${1:-10} pid=${UML_PID:-}
	[ -n "$pid" ] || return 0
	# 1. Ask the guest: /init powers off when this file appears in its
	#    root (a clean shutdown, about 0.3 s).
	if kill -0 "$pid" 2>/dev/null && [ -d "${UML_ROOT_DIR:-}" ]; then
		: >"$UML_ROOT_DIR/.uml-poweroff"
		wait_until 3 eval '! kill -0 '"$pid"' 2>/dev/null' || true
	fi
	# 2. SIGTERM: UML removes its devices, kills its helper processes and
	#    exits (the kernel may log "bad: scheduling from the idle thread!"
	#    with a stack trace while removing the virtio device: harmless).
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait_until "$limit" eval '! kill -0 '"$pid"' 2>/dev/null' ||
			echo "uml_stop: UML ignored SIGTERM for ${limit}s, killing" >&2
	fi
	# 3. Whatever is left of the group (helpers, or everything after a
	#    timeout) gets SIGKILL; then wait until the group is empty.
	kill -KILL -- "-$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -d "${UML_ROOT_DIR:-}" ] && rm -f "$UML_ROOT_DIR/.uml-poweroff"
	# shellcheck disable=SC2016 # expanded by eval
	if ! wait_until 5 eval '[ -z "$(_uml_group_pids '"$pid"')" ]'; then
		echo "uml_stop: processes of group $pid still there:" \
			"$(_uml_group_pids "$pid" | tr '\n' ' ')" >&2
		return 1
	fi
	UML_PID=
	return 0
}

uml_con_open() {
	local port=$1
	uml_con_close
	exec 5<>"/dev/tcp/127.0.0.1/$port" || return 1
	UML_CON_N=$(( UML_CON_N + 1 ))
	UML_CON_OUT=$T/con.$UML_CON_N.out
	: >"$UML_CON_OUT"
	cat <&5 >>"$UML_CON_OUT" 5>&- 3>&- &
	UML_CON_READER=$!
	BG_PIDS+=("$UML_CON_READER")
}

uml_con_send() {
	printf '%b' "$1" >&5
}

uml_con_expect_line() {
	local text=$1 limit=${2:-15}
	if wait_until "$limit" grep -qxF -e "$text" -e "$text"$'\r' "$UML_CON_OUT"; then
		return 0
	fi
	echo "uml_con_expect_line: no line '$text' within ${limit}s; received:" >&2
	cat -v "$UML_CON_OUT" >&2
	return 1
}

uml_con_close() {
	if [ -n "$UML_CON_READER" ]; then
		kill -TERM "$UML_CON_READER" 2>/dev/null || true
		wait "$UML_CON_READER" 2>/dev/null || true
		UML_CON_READER=
	fi
	exec 5>&- 2>/dev/null
	return 0
}

uml_teardown() {
	local rc=0
	uml_con_close
	uml_stop || rc=1
	if [ -n "${UML_KEEP_LOGS:-}" ]; then
		mkdir -p "$UML_KEEP_LOGS/$BATS_TEST_NUMBER"
		cp "$T"/*.log "$T"/*.out "$UML_KEEP_LOGS/$BATS_TEST_NUMBER/" 2>/dev/null
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		echo "--- daemon.log:" >&2
		cat "$T/daemon.log" >&2 2>/dev/null
		echo "--- uml.log ($1):" >&2
		grep -aE "$2" "$T/uml.log" >&2 2>/dev/null
	fi
	common_teardown || rc=1
	return $rc
}
