#!/usr/bin/env bats
# make demo (demo/demo.sh): a user-mode Linux guest's shell through the
# daemon in one command, and nothing left behind however it ends; make run
# and the README telling the same story.
#
# The demo runs under tests/ptyrun on a fresh pty (cooked, 80x24), as a
# user would run it in a terminal: what the test writes to the FIFO $T/in
# is typed, what the demo and the guest write is in $T/tty.out.  TMPDIR=$T,
# so the demo's one temp dir is $T/vc-demo.*, and every process it starts
# has that path on its command line: that is how the tests look for
# leftovers.

bats_require_minimum_version 1.5.0
load helpers

DEMO=$TOP/demo/demo.sh

setup() {
	common_setup
	command -v linux.uml >/dev/null || skip "no linux.uml (package user-mode-linux)"
	if [ ! -x "$PTYRUN" ]; then
		echo "no $PTYRUN: run 'make tests/ptyrun'" >&2
		return 1
	fi
	PTY_PID=
}

teardown() {
	local p
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		echo "--- tty.out:" >&2
		cat -v "$T/tty.out" >&2 2>/dev/null
		echo "--- ptyrun.err:" >&2
		cat "$T/ptyrun.err" >&2 2>/dev/null
	fi
	# A failed test may leave the demo running: SIGTERM through ptyrun
	# (its cleanup), then SIGKILL to whatever of it is left, by pid.
	if [ -n "$PTY_PID" ] && kill -0 "$PTY_PID" 2>/dev/null; then
		kill -TERM "$PTY_PID"
		wait_gone "$PTY_PID" 15 || true
	fi
	for p in $(pgrep -f "$T/vc-demo"); do
		kill -KILL "$p" 2>/dev/null
	done
	common_teardown
}

# start_demo [ARG...]: demo/demo.sh ARGS on a pty, in the background.
start_demo() {
	mkfifo "$T/in"
	TMPDIR=$T "$PTYRUN" -i "$T/in" -o "$T/tty.out" -p "$T/demo.pid" \
		-s "$T/stty" -t "$T/tty" -- bash "$DEMO" "$@" \
		</dev/null >"$T/ptyrun.out" 2>"$T/ptyrun.err" 3>&- &
	PTY_PID=$!
	BG_PIDS+=("$PTY_PID")
	wait_until 5 test -s "$T/demo.pid"
}

# boot_demo: the nested demo, until the guest's prompt is on the terminal.
boot_demo() {
	start_demo
	wait_log "$T/tty.out" 'uml# ' 60
}

# type_in TEXT: type TEXT (printf %b: \n, \003, \035) on the demo's pty.
type_in() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 5 bash -c 'printf "%b" "$1" >"$2"' _ "$1" "$T/in"
}

# expect_exit STATUS: the demo exits, with STATUS, within 20 s.
expect_exit() {
	local rc=0
	if ! wait_gone "$PTY_PID" 20; then
		echo "the demo did not exit within 20 s" >&2
		return 1
	fi
	wait "$PTY_PID" || rc=$?
	PTY_PID=
	if [ "$rc" -ne "$1" ]; then
		echo "exit status $rc, expected $1" >&2
		return 1
	fi
}

# expect_nothing_left: no process with the demo's paths, no temp dir.
expect_nothing_left() {
	local left
	left=$(pgrep -af "$T/vc-demo" || true)
	if [ -n "$left" ]; then
		echo "processes left behind:" >&2
		echo "$left" >&2
		return 1
	fi
	left=$(find "$T" -maxdepth 1 -name 'vc-demo.*')
	if [ -n "$left" ]; then
		echo "left behind: $left" >&2
		return 1
	fi
}

@test "demo: one command gives a guest shell prompt that runs commands" {
	boot_demo
	# The echoed command line holds "$((6*7))", never "42" alone.
	type_in 'echo $((6*7))\n'
	wait_until 20 grep -qx $'42\r' "$T/tty.out"
}

@test "demo: the guest's terminal has the host terminal's size (stty size)" {
	boot_demo
	type_in 'stty size\n'
	wait_until 20 grep -qx $'24 80\r' "$T/tty.out"
}

@test "demo: Ctrl-C interrupts the guest's sleep 100, not the demo" {
	boot_demo
	# start-36 only once the child shell is the foreground job (see
	# nested.bats): ^C cannot arrive before sleep owns the terminal.
	type_in "sh -c 'echo start-\$((6*6)); exec sleep 100'\n"
	wait_log "$T/tty.out" 'start-36' 20
	type_in '\003'
	type_in 'echo rc-$?\n'
	wait_log "$T/tty.out" 'rc-130' 20
	kill -0 "$PTY_PID"
}

@test "demo: Ctrl-] q exits 0 and leaves no process, socket or temp dir" {
	boot_demo
	ls "$T"/vc-demo.*/vc.sock0 >/dev/null
	type_in '\035q'
	expect_exit 0
	expect_nothing_left
	# and it ends quietly: no shell error about processes already gone
	refute grep -q 'No such file' "$T/tty.out"
}

@test "demo: SIGHUP (the terminal gone) leaves nothing behind either" {
	boot_demo
	kill -HUP "$(cat "$T/demo.pid")"
	expect_exit 129
	expect_nothing_left
}

@test "demo: poweroff in the guest ends the demo with status 0" {
	boot_demo
	type_in 'poweroff\n'
	expect_exit 0
	grep -q 'the guest powered off' "$T/tty.out"
	expect_nothing_left
}

@test "demo: BACKEND=network prints the socat line, serves the guest there, Ctrl-C ends it" {
	local port
	port=$(free_port)
	TCP_PORT=$port start_demo network
	wait_log "$T/tty.out" "socat .*TCP:127\.0\.0\.1:$port" 20
	wait_log "$T/tty.out" 'the guest.s console port is ready' 60
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	cat <&5 >"$T/con.out" 5>&- 3>&- &
	BG_PIDS+=($!)
	# A new client gets the console's history: the prompt, once it is up.
	wait_log "$T/con.out" 'uml# ' 30
	# shellcheck disable=SC2016 # for the guest shell
	printf 'echo $((6*7))\n' >&5
	wait_until 20 grep -qx $'42\r' "$T/con.out"
	exec 5>&-
	# The terminal is cooked: ^C is SIGINT to the demo's process group.
	type_in '\003'
	expect_exit 130
	expect_nothing_left
}

@test "demo: SOCKET= boots only the guest, against a daemon already listening" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/run.sock" --backend=network --tcp-port="$PORT"
	start_demo --socket="$T/run.sock0"
	wait_log "$T/daemon.log" 'console port is ready' 60
	type_in '\003'
	expect_exit 130
	expect_nothing_left
	# The daemon is not the demo's: it stays, waiting for the next guest.
	kill -0 "$DAEMON_PID"
	wait_log "$T/daemon.log" 'frontend disconnected' 10
}

@test "demo: without user-mode Linux it says what to install and leaves nothing" {
	run -1 env TMPDIR="$T" UML_BIN="$T/no-linux.uml" bash "$DEMO" network
	[[ "$output" == *"no $T/no-linux.uml"*"user-mode-linux busybox-static"* ]]
	expect_nothing_left
}

@test "demo: the nested backend without a terminal is refused, naming another" {
	run -1 env TMPDIR="$T" bash "$DEMO" </dev/null
	[[ "$output" == *"needs a terminal"*"BACKEND=network"* ]]
	expect_nothing_left
}

@test "make run: says where it waits and how to attach the demo, linux.uml and QEMU" {
	run make -s -C "$TOP" run RUN_SOCKET="$T/run.sock" \
		RUN_ARGS="--backend=network --tcp-port=$(free_port) --help"
	[[ "$output" == *"waits for a vhost-user frontend on $T/run.sock0"* ]]
	[[ "$output" == *"make demo SOCKET=$T/run.sock0"* ]]
	[[ "$output" == *"virtio_uml.device=$T/run.sock0:3"* ]]
	[[ "$output" == *"path=$T/run.sock0 -device vhost-user-test-device-pci,"*"vq_size="* ]]
}

@test "README: the UML and QEMU examples use make run's socket path" {
	local sock
	sock=$(sed -n 's/^RUN_SOCKET *= *//p' "$TOP/Makefile")0
	[ "$sock" = /tmp/vhost-device-console.sock0 ]
	# Every socket a frontend line names in those sections is that one.
	run bash -c "sed -n '/^With QEMU\$/,/^Performance\$/p' '$TOP/README' |
		grep -oE '(path=|virtio_uml\.device=)[^ ,:]*' | sort -u"
	[ "$status" -eq 0 ]
	[ -n "$output" ]
	while read -r line; do
		[ "${line#*=}" = "$sock" ] || { echo "README names $line"; return 1; }
	done <<<"$output"
}
