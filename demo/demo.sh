#!/usr/bin/env bash
# make demo: a Linux guest's shell through vhost-device-console, in one
# command.  Builds a small user-mode Linux root (tests/uml-root.sh), starts
# the daemon, boots linux.uml as its vhost-user frontend, and waits.
#
#     demo/demo.sh [LIST]              LIST: the daemon's --backend (nested)
#     demo/demo.sh --socket=PATH0      boot only the guest, against a daemon
#                                      already listening on PATH0 (make run)
#
# nested (the default): the guest's console is this terminal.  Ctrl-C goes
#     to the guest; Ctrl-] q ends the daemon, and with it the demo.
# network, unix, pty, web (or a list such as network,web): the demo prints
#     how to connect (socat line, URL) and runs until Ctrl-C.
# With --socket, the guest's console is wherever that daemon serves it.
# `poweroff` in the guest ends the demo too.
#
# Whatever the way out (Ctrl-] q, Ctrl-C, SIGTERM, SIGHUP, a failure), the
# EXIT trap stops the guest and every process it forked, then the daemon,
# and removes the one temp dir that holds everything: root, vhost-user
# socket, UML's uml_dir and memory file, logs.  Exit status: the daemon's
# (0 after Ctrl-] q), 0 after `poweroff` in the guest, 130/143/129 after
# SIGINT/SIGTERM/SIGHUP, 1 when something is missing or fails (one line
# saying what, and the log that tells why).
#
# Environment: VC_DAEMON (the daemon, default ./vhost-device-console),
# TCP_PORT (network, 12345), WEB_PORT (web, 8080), TMPDIR (where the temp
# dir goes; it must allow exec: UML maps its RAM from a file there),
# UML_BIN, UML_BUSYBOX, UML_MODDIR (see tests/uml-root.sh).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
daemon=${VC_DAEMON:-$top/vhost-device-console}
backend=nested
socket=
TCP_PORT=${TCP_PORT:-12345}
WEB_PORT=${WEB_PORT:-8080}
D=
daemon_pid=
uml_pid=

say() { printf 'demo: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
	echo "usage: demo/demo.sh [nested|network|unix|pty|web|LIST] | --socket=PATH0" >&2
	exit 2
}

parse_args() {
	local a
	for a in "$@"; do
		case $a in
		--socket=?*) socket=${a#--socket=} ;;
		-h | --help) usage ;;
		-*) usage ;;
		*) backend=$a ;;
		esac
	done
	case ",$backend," in
	*[!a-z,]* | *,,*) die "backend list '$backend': expected words such as nested,network,unix,pty,web" ;;
	esac
}

# need_guest_tools: linux.uml, its modules and a static busybox.  On Debian
# tests/deps.sh installs the two packages (as root) or prints the apt-get
# line; elsewhere, or with UML_BIN/UML_BUSYBOX set, the tools must be there.
need_guest_tools() {
	if [ -z "${UML_BIN:-}${UML_BUSYBOX:-}" ] && command -v dpkg-query >/dev/null; then
		sh "$top/tests/deps.sh" --only user-mode-linux busybox-static ||
			die "make demo needs the Debian packages above"
	elif ! command -v "${UML_BIN:-linux.uml}" >/dev/null; then
		die "no ${UML_BIN:-linux.uml}: the demo needs user-mode Linux (Debian:" \
			"apt-get install user-mode-linux busybox-static; elsewhere set" \
			"UML_BIN, UML_MODDIR and UML_BUSYBOX)"
	fi
	# shellcheck source=../tests/uml-root.sh
	source "$top/tests/uml-root.sh"
}

# need_terminal: the nested backend takes over this terminal.
need_terminal() {
	[ -n "$socket" ] && return 0
	case ",$backend," in
	*,nested,*)
		[ -t 0 ] && [ -t 1 ] ||
			die "the nested backend needs a terminal; try: make demo BACKEND=network"
		;;
	esac
}

# until_ok SECONDS CMD...: poll CMD every 50 ms until it succeeds.
until_ok() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.05
	done
}

# alive PID: running, not a zombie (one this shell has not waited for yet
# still answers kill -0).
alive() {
	local stat
	# The redirection of stderr first: a gone pid's missing file is no error.
	[ -n "$1" ] && { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}
# group_alive PGID: any process of the group left (UML's helpers).
group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# daemon_args: the daemon's command line for $backend.  Every path is in
# $D, so that nothing outlives the demo.
daemon_args() {
	args=(--socket-path="$D/vc.sock" --backend="$backend")
	case ",$backend," in *,network,*) args+=(--tcp-port="$TCP_PORT") ;; esac
	case ",$backend," in *,unix,* | *,uds,*) args+=(--unix-path="$D/console") ;; esac
	case ",$backend," in *,pty,*) args+=(--pty-link="$D/pty") ;; esac
	case ",$backend," in
	*,web,*)
		args+=(--web-port="$WEB_PORT")
		[ -f "$top/web/node_modules/@xterm/xterm/lib/xterm.js" ] &&
			args+=(--web-assets="$top/web/node_modules/@xterm/xterm")
		;;
	esac
}

# start_daemon: in the background, until its "ready" line.  On the nested
# terminal its log would land in the middle of the guest's screen: it goes
# to $D/daemon.log (shown if it fails); otherwise it goes to this terminal
# as well.
start_daemon() {
	local -a args
	daemon_args
	[ -x "$daemon" ] || die "no daemon $daemon: run make first"
	: >"$D/daemon.log"
	case ",$backend," in
	*,nested,*)
		# A background command of a script gets /dev/null as stdin
		# unless told otherwise: give it this terminal (fd 3).
		"$daemon" "${args[@]}" <&3 2>"$D/daemon.log" 3<&- &
		;;
	*)
		"$daemon" "${args[@]}" </dev/null 2> >(tee -a "$D/daemon.log" >&2) 3<&- &
		;;
	esac
	daemon_pid=$!
	if ! until_ok 10 grep -q 'ready: ' "$D/daemon.log"; then
		alive "$daemon_pid" && kill -TERM "$daemon_pid"
		wait "$daemon_pid" 2>/dev/null
		daemon_pid=
		say "the daemon did not start; its log:"
		cat "$D/daemon.log" >&2
		exit 1
	fi
	socket=$D/vc.sock0
}

# boot_guest: linux.uml against $socket, in its own session (it forks
# helpers, and Ctrl-C on a cooked terminal must not reach them), its
# kernel console to $D/uml.log, its control socket (uml_dir) and its RAM
# file (TMPDIR) in $D.
boot_guest() {
	TMPDIR=$D setsid "$UML_BIN" mem=64M \
		rootfstype=hostfs rootflags="$D/root" rw init=/init \
		virtio_uml.device="$socket:3" \
		con=null ssl=null con0=null,fd:1 \
		uml_dir="$D/uml" umid=demo uml_wait=30 \
		</dev/null >"$D/uml.log" 2>&1 3<&- &
	uml_pid=$!
}

# print_ways_in: how to reach the guest's console, for the backends
# that are not this terminal.
print_ways_in() {
	local b raw='-,raw,echo=0,escape=0x1d'
	for b in ${backend//,/ }; do
		case $b in
		network)
			say "console: socat $raw TCP:127.0.0.1:$TCP_PORT   (Ctrl-] leaves)"
			say "     or: telnet 127.0.0.1 $TCP_PORT   (line by line)" ;;
		unix | uds)
			say "console: socat $raw UNIX-CONNECT:$D/console0   (Ctrl-] leaves)" ;;
		pty)
			say "console: socat $raw FILE:$D/pty0,raw,echo=0   (Ctrl-] leaves)" ;;
		web)
			say "console: http://127.0.0.1:$WEB_PORT/console/0"
			[ -f "$top/web/node_modules/@xterm/xterm/lib/xterm.js" ] ||
				say "  (plain text: make web-assets installs the xterm.js terminal)" ;;
		esac
	done
}

# stop_guest: a clean guest shutdown (/init polls for /.uml-poweroff), then
# SIGTERM (UML kills its helpers), then SIGKILL to the whole group; wait
# until none of its processes is left.
stop_guest() {
	[ -n "$uml_pid" ] || return 0
	if alive "$uml_pid"; then
		: >"$D/root/.uml-poweroff"
		until_ok 2 eval '! alive "$uml_pid"' ||
			{ kill -TERM "$uml_pid"; until_ok 5 eval '! alive "$uml_pid"'; }
	fi
	kill -KILL -- "-$uml_pid" 2>/dev/null
	wait "$uml_pid" 2>/dev/null
	until_ok 5 eval '! group_alive "$uml_pid"' ||
		say "guest processes of group $uml_pid would not go"
	uml_pid=
}

stop_daemon() {
	[ -n "$daemon_pid" ] || return 0
	alive "$daemon_pid" && kill -TERM "$daemon_pid"
	until_ok 5 eval '! alive "$daemon_pid"' || kill -KILL "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
}

cleanup() {
	local rc=$?
	trap '' INT TERM HUP
	stop_guest
	stop_daemon
	# The daemon's log tee (process substitution) ends with the daemon.
	wait 2>/dev/null
	[ -n "$D" ] && rm -rf "$D"
	exit "$rc"
}

# show_guest_log: why the guest did not come up (its kernel console).
show_guest_log() {
	say "guest log ($D/uml.log, last lines):"
	grep -aE 'virtio|vhost|hvc|UML-|panic|BUG' "$D/uml.log" | tail -n 20 >&2
}

# watch: until the daemon or the guest ends; then the other goes too.
watch() {
	local rc=0
	if [ -n "$daemon_pid" ]; then
		wait -n "$daemon_pid" "$uml_pid"
	fi
	# When the daemon quits (Ctrl-] q) the guest loses its device, and UML
	# may die of it at once and be the one wait -n reports: a daemon gone
	# within a second of the guest is what ended the demo.
	if [ -n "$daemon_pid" ] && { ! alive "$daemon_pid" ||
	   { ! alive "$uml_pid" && until_ok 1 eval '! alive "$daemon_pid"'; }; }; then
		# (bash keeps the status for a later wait, even after wait -n)
		wait "$daemon_pid" || rc=$?
		daemon_pid=
		stop_guest
		if [ "$rc" -ne 0 ]; then
			say "the daemon exited with status $rc; its log:"
			cat "$D/daemon.log" >&2
		fi
		return "$rc"
	fi
	wait "$uml_pid" || rc=$?
	uml_pid=
	stop_daemon
	if grep -qF 'UML-MARKER: HVC0-FAILED' "$D/uml.log"; then
		say "the guest found no console port (is a daemon serving $socket?)"
		show_guest_log
		return 1
	fi
	if [ "$rc" -ne 0 ]; then
		say "the guest (linux.uml) exited with status $rc"
		show_guest_log
		return 1
	fi
	say "the guest powered off"
	return 0
}

main() {
	parse_args "$@"
	need_terminal
	need_guest_tools
	D=$(mktemp -d "${TMPDIR:-/tmp}/vc-demo.XXXXXX") || die "cannot make a temp dir"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	uml_root_build "$D/root" >&2 || die "cannot build the guest root"
	exec 3<&0
	if [ -n "$socket" ]; then
		[ -S "$socket" ] ||
			die "no vhost-user socket $socket: start the daemon first (make run)"
		say "booting a user-mode Linux guest against $socket;" \
			"its console is where that daemon serves it; Ctrl-C here stops the guest"
	else
		case ",$backend," in
		*,nested,*)
			say "a user-mode Linux guest on this terminal, through vhost-device-console"
			say "Ctrl-C goes to the guest; Ctrl-] then q quits (the daemon and the guest)"
			say "(while it runs, the logs are $D/daemon.log and $D/uml.log)"
			;;
		esac
		start_daemon
	fi
	boot_guest
	case ",$backend," in
	*,nested,*) ;;
	*)
		[ -n "$daemon_pid" ] && print_ways_in
		[ -n "$daemon_pid" ] && say "Ctrl-C stops the daemon and the guest"
		;;
	esac
	watch
}

main "$@"
