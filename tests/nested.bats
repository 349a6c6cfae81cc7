#!/usr/bin/env bats
# The nested backend: the daemon's own terminal is the guest console.  The
# daemon runs under tests/ptyrun on a fresh pty (cooked mode, 80x24), which
# records `stty -g` of that pty before the daemon starts and after it exits,
# feeds it what the test writes to a FIFO and logs what the daemon writes.
# Every exit path (escape key, SIGTERM, SIGINT, SIGHUP, a fatal signal)
# must leave the terminal as it found it.
#
# Files of a test ($T): in (FIFO, typed into the pty), tty.out (what the
# daemon wrote to its terminal), daemon.log (its stderr), stty (before:/
# after: lines), tty (the pty slave's path), daemon.pid.  With
# NESTED_KEEP_LOGS=DIR they are kept in DIR/<test number>/.

bats_require_minimum_version 1.5.0
load helpers
load uml

setup() {
	common_setup
	if [ ! -x "$PTYRUN" ]; then
		echo "no $PTYRUN: run 'make tests/ptyrun'" >&2
		return 1
	fi
	PTY_PID=
}

teardown() {
	local rc=0
	uml_stop || rc=1
	if [ -n "${NESTED_KEEP_LOGS:-}" ]; then
		mkdir -p "$NESTED_KEEP_LOGS/$BATS_TEST_NUMBER"
		cp "$T"/*.log "$T"/*.out "$T/stty" "$NESTED_KEEP_LOGS/$BATS_TEST_NUMBER/" 2>/dev/null
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		local f
		for f in daemon.log ptyrun.err stty tty.out; do
			echo "--- $f:" >&2
			cat -v "$T/$f" >&2 2>/dev/null
		done
		if [ -f "$T/uml.log" ]; then
			echo "--- uml.log (virtio and guest lines):" >&2
			grep -aE 'virtio|vhost|hvc|UML-|Kernel panic|BUG' "$T/uml.log" >&2
		fi
	fi
	common_teardown || rc=1
	return $rc
}

# start_nested [ARGS...]: the daemon with --backend=nested (and ARGS)
# under ptyrun, until it is ready.  Sets PTY_PID (ptyrun), DAEMON_PID and
# SLAVE.
start_nested() {
	mkfifo "$T/in"
	"$PTYRUN" -i "$T/in" -o "$T/tty.out" -e "$T/daemon.log" \
		-p "$T/daemon.pid" -s "$T/stty" -t "$T/tty" -- \
		"$DAEMON" --socket-path="$T/vc.sock" --backend=nested "$@" \
		</dev/null >"$T/ptyrun.out" 2>"$T/ptyrun.err" 3>&- &
	PTY_PID=$!
	BG_PIDS+=("$PTY_PID")
	if ! wait_until 5 test -s "$T/daemon.pid"; then
		echo "ptyrun did not start the daemon:" >&2
		cat "$T/ptyrun.err" >&2
		return 1
	fi
	DAEMON_PID=$(cat "$T/daemon.pid")
	BG_PIDS+=("$DAEMON_PID")
	SLAVE=$(cat "$T/tty")
	if ! wait_log "$T/daemon.log" 'ready: ' 10; then
		echo "daemon did not become ready" >&2
		return 1
	fi
}

# type_in TEXT: type TEXT (printf %b escapes: \n, \003, \035) on the
# daemon's terminal.  Bounded: the FIFO open blocks only until ptyrun has it.
type_in() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 5 bash -c 'printf "%b" "$1" >"$2"' _ "$1" "$T/in"
}

# stty_line TAG: the `stty -g` ptyrun recorded before/after the daemon ran.
stty_line() {
	sed -n "s/^$1: //p" "$T/stty"
}

# tty_has FLAG...: `stty -a` of the daemon's terminal shows every FLAG
# (e.g. -icanon) as a word.
tty_has() {
	local words f
	words=" $(stty -a <"$SLAVE" | tr -s ' ;\n' '  ') " || return 1
	for f in "$@"; do
		[[ "$words" == *" $f "* ]] || return 1
	done
}

# tty_is_raw: the terminal is no longer what ptyrun set up, and it is raw
# (no line editing, no echo, no signal keys).
tty_is_raw() {
	[ "$(stty -g <"$SLAVE")" != "$(stty_line before)" ] &&
		tty_has -icanon -echo -isig
}

# expect_exit STATUS: ptyrun (hence the daemon) exits, with STATUS.
expect_exit() {
	if ! wait_gone "$PTY_PID" 10; then
		echo "the daemon did not exit within 10 s" >&2
		return 1
	fi
	local rc=0
	wait "$PTY_PID" || rc=$?
	if [ "$rc" -ne "$1" ]; then
		echo "exit status $rc, expected $1" >&2
		return 1
	fi
}

# expect_restored: ptyrun's stty after the daemon equals the one before.
expect_restored() {
	local before after
	before=$(stty_line before)
	after=$(stty_line after)
	if [ -z "$before" ] || [ -z "$after" ]; then
		echo "no before/after in $T/stty" >&2
		return 1
	fi
	if [ "$before" != "$after" ]; then
		echo "terminal not restored: before=$before after=$after" >&2
		return 1
	fi
}

@test "nested: raw terminal while running; ^] q exits 0 and restores it" {
	start_nested
	# ptyrun's own cooked mode, as a baseline for what follows.
	[[ "$(stty_line before)" != "" ]]
	wait_until 5 tty_is_raw
	kill -0 "$DAEMON_PID"
	type_in '\035q'
	expect_exit 0
	expect_restored
}

@test "nested: SIGTERM exits 0 and restores the terminal" {
	start_nested
	wait_until 5 tty_is_raw
	kill -TERM "$DAEMON_PID"
	expect_exit 0
	expect_restored
}

@test "nested: SIGHUP exits 0 and restores the terminal" {
	start_nested
	wait_until 5 tty_is_raw
	kill -HUP "$DAEMON_PID"
	expect_exit 0
	expect_restored
}

@test "nested: SIGINT exits 0 and restores the terminal" {
	start_nested
	wait_until 5 tty_is_raw
	kill -INT "$DAEMON_PID"
	expect_exit 0
	expect_restored
}

@test "nested: a fatal signal (SIGABRT) still restores the terminal" {
	start_nested
	wait_until 5 tty_is_raw
	kill -ABRT "$DAEMON_PID"
	expect_exit $(( 128 + 6 ))
	expect_restored
}

@test "nested: without a tty, EOF on stdin stops input only; SIGTERM exits 0" {
	start_daemon --socket-path="$T/vc.sock" --backend=nested
	# The daemon has read EOF on its first pass; a frontend's guest output
	# must still reach stdout, and the daemon must still be there.
	"$FRONTEND" "$T/vc.sock0" init handshake write 'hello-from-guest\n' 3>&-
	wait_log "$T/daemon.out" 'hello-from-guest' 10
	kill -0 "$DAEMON_PID"
	stop_daemon
	[ "$DAEMON_RC" -eq 0 ]
}

# boot_nested_guest: the daemon on a pty, a user-mode Linux guest against
# it, until the guest's shell prompt is on the terminal.
boot_nested_guest() {
	command -v "$UML_BIN" >/dev/null || skip "no $UML_BIN (package user-mode-linux)"
	uml_rootfs "$T/root"
	start_nested
	wait_until 5 tty_is_raw
	uml_boot "$T/vc.sock0"
	uml_wait_ready 60
	wait_log "$T/tty.out" 'uml# ' 20
}

@test "nested: a Linux guest's shell through the terminal, ^C reaches the guest" {
	boot_nested_guest
	# ^C must arrive once sleep owns the guest terminal: the child shell
	# prints start-36 when it already is the foreground job (ash hands it
	# the tty first), then execs sleep.  The echoed command line holds
	# only "$((6*6))", never "start-36"; likewise for rc-130 below.
	type_in "sh -c 'echo start-\$((6*6)); exec sleep 60'; echo slept-\$((6*7))\n"
	wait_log "$T/tty.out" 'start-36' 20
	type_in '\003'
	type_in 'echo rc-$?\n'
	wait_log "$T/tty.out" 'rc-130' 20
	run grep -q 'slept-42' "$T/tty.out"
	[ "$status" -ne 0 ]
	# The daemon is still there (^C went to the guest, not to it).
	kill -0 "$DAEMON_PID"
	# ^] twice sends one ^] to the guest: it reads "^]q" as a line and
	# shows its bytes (the echoed command line holds no "1d 71", and none
	# of "go-6": typed only once the shell runs the line, not edits it).
	# shellcheck disable=SC2016 # for the guest shell to expand
	type_in 'echo go-$((2*3)); read -r x; printf %s "$x" | od -An -tx1\n'
	wait_log "$T/tty.out" 'go-6' 20
	type_in '\035\035q\n'
	wait_log "$T/tty.out" '^ *1d 71' 20
	type_in '\035q'
	expect_exit 0
	expect_restored
}

@test "nested,network: the terminal and a TCP client share console 0" {
	PORT=$(free_port)
	start_nested --backend=nested,network --tcp-port="$PORT"
	grep -q "console 0: device 0 port 0: this terminal .*; tcp 127.0.0.1:$PORT$" "$T/daemon.log"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	"$FRONTEND" "$T/vc.sock0" init handshake write 'shared output\n' \
		expect-all 2 from-tcp from-tty write 'both arrived\n' 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_line 5 "shared output"
	wait_until 10 grep -q 'shared output' "$T/tty.out"
	printf from-tcp >&5
	type_in 'from-tty'
	read_line 5 "both arrived"
	wait_until 10 grep -q 'both arrived' "$T/tty.out"
	wait "$f" || { cat "$T/fe.err"; return 1; }
}

@test "nested: the terminal's size goes to the guest, and again on SIGWINCH" {
	start_nested
	# ptyrun starts the pty at 80x24
	"$FRONTEND" "$T/vc.sock0" init --size handshake --resize=80x24 write 'SIZED\n' \
		expect-resize 120 24 write 'RESIZED\n' 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_until 10 grep -q SIZED "$T/tty.out"
	# the kernel sends SIGWINCH to the daemon, the pty's foreground job
	# (one dimension: stty sets each with its own ioctl, one SIGWINCH each)
	stty -F "$SLAVE" cols 120
	wait "$f" || { cat "$T/fe.err"; return 1; }
	grep -q RESIZED "$T/tty.out"
}

@test "nested: without MULTIPORT the size is in config, with CONFIG_CHANGE_MSG" {
	start_nested
	"$FRONTEND" "$T/vc.sock0" init --size --no-multiport expect-config-size 80 24 \
		write 'SIZED\n' expect-config-change expect-config-size 80 50 \
		write 'RESIZED\n' 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_until 10 grep -q SIZED "$T/tty.out"
	stty -F "$SLAVE" rows 50
	wait_until 10 grep -q RESIZED "$T/tty.out"
	wait "$f" || { cat "$T/fe.err"; return 1; }
}

@test "nested: resizing the terminal changes the guest's stty size" {
	boot_nested_guest
	# ptyrun's window is 80x24; stty size prints "rows cols"
	type_in 'stty size\n'
	wait_log "$T/tty.out" '^24 80' 20
	stty -F "$SLAVE" cols 132
	type_in 'stty size\n'
	wait_log "$T/tty.out" '^24 132' 20
}

# quit_after OUTPUT SEEN WANT: the guest writes OUTPUT (SEEN: a grep
# pattern for it on the terminal), ^] q, and the terminal's last bytes
# are WANT (printf format).
quit_after() {
	start_nested
	"$FRONTEND" "$T/vc.sock0" init handshake write "$1" hold "$T/done" \
		2>"$T/fe.err" 3>&- &
	BG_PIDS+=("$!")
	wait_until 10 grep -q "$2" "$T/tty.out"
	type_in '\035q'
	expect_exit 0
	printf "$3" >"$T/want"
	cmp <(tail -c "$(stat -c %s "$T/want")" "$T/tty.out") "$T/want"
}

@test "nested: ^] q ends the terminal's output with a newline and a quit line" {
	quit_after 'prompt$ ' 'prompt\$ ' 'prompt$ \r\n[vhost-device-console: quit]\r\n'
}

@test "nested: ^] q after a finished line adds no blank line before the quit line" {
	quit_after 'bye\n' 'bye' 'bye\n[vhost-device-console: quit]\r\n'
}

@test "nested,network: a log line while the guest's line is unfinished starts a line of its own" {
	PORT=$(free_port)
	mkfifo "$T/in"
	# stderr on the terminal too, as for a user
	"$PTYRUN" -i "$T/in" -o "$T/tty.out" -p "$T/daemon.pid" -s "$T/stty" \
		-t "$T/tty" -- "$DAEMON" --socket-path="$T/vc.sock" \
		--backend=nested,network --tcp-port="$PORT" \
		</dev/null >"$T/ptyrun.out" 2>"$T/ptyrun.err" 3>&- &
	PTY_PID=$!
	BG_PIDS+=("$PTY_PID")
	wait_log "$T/tty.out" 'ready: ' 10
	"$FRONTEND" "$T/vc.sock0" init handshake write 'login: ' hold "$T/done" \
		2>"$T/fe.err" 3>&- &
	BG_PIDS+=("$!")
	wait_until 10 grep -q 'login: ' "$T/tty.out"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/tty.out" 'client .* connected' 10
	grep -q "login: "$'\r'"\$" "$T/tty.out"
	grep -q "^vhost-device-console: console 0: client .* connected"$'\r'"\$" "$T/tty.out"
	touch "$T/done"
}
