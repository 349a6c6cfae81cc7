#!/usr/bin/env bats
# The pty backend: a pseudo-terminal per console, opened by the test as a
# terminal program would.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# start_pty ARGS...: the daemon with --backend=pty; sets SLAVE (console 0).
start_pty() {
	start_daemon --socket-path="$T/s" --backend=pty "$@"
	SLAVE=$(sed -n 's/.*console 0: device 0 port 0: pty \(\/dev\/pts\/[0-9]*\).*/\1/p' "$T/daemon.log")
	[ -c "$SLAVE" ] || { echo "no pty in the log"; cat "$T/daemon.log"; return 1; }
}

# cpu_ticks: the daemon's user + system time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }

@test "pty: output and input through the slave, also after it is closed and reopened" {
	start_pty --pty-link="$T/console"
	[ "$(readlink "$T/console0")" = "$SLAVE" ]
	exec 5<>"$SLAVE"
	"$FRONTEND" "$T/s0" init handshake write 'hello pty\n' expect 'typed' \
		hold "$T/go" write 'again\n' 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_line 5 "hello pty"
	printf typed >&5
	# nobody has the slave open now: the daemon must not spin on the master
	exec 5>&-
	local t0; t0=$(cpu_ticks)
	sleep 1   # the observation window itself, not a wait for a condition
	[ $(( $(cpu_ticks) - t0 )) -lt 20 ] || { echo "daemon busy: $(( $(cpu_ticks) - t0 )) ticks in 1 s"; return 1; }
	exec 5<>"$SLAVE"
	touch "$T/go"
	read_line 5 "again"
	wait "$f" || { cat "$T/fe.err"; return 1; }
	stop_daemon
	[ "$DAEMON_RC" -eq 0 ]
	[ ! -e "$T/console0" ]
}

@test "--pty-link replaces only a symlink: a file at the path stops the start with status 1, untouched" {
	echo precious >"$T/console0"
	run timeout -k 1 5 "$DAEMON" --socket-path="$T/s" --backend=pty --pty-link="$T/console"
	[ "$status" -eq 1 ] || { echo "status $status: $output"; return 1; }
	[[ "$output" == *"--pty-link: $T/console0 exists and is not a symbolic link; refusing to replace it"* ]]
	[ "$(cat "$T/console0")" = precious ]
	# an earlier run's link is replaced
	rm "$T/console0"
	ln -s /nonexistent "$T/console0"
	start_pty --pty-link="$T/console"
	[ "$(readlink "$T/console0")" = "$SLAVE" ]
}

@test "--pty-link: at exit only our own link is removed, not what took its place" {
	start_pty --pty-link="$T/console"
	rm "$T/console0"
	echo precious >"$T/console0"
	stop_daemon
	[ "$DAEMON_RC" -eq 0 ]
	[ "$(cat "$T/console0")" = precious ]
	rm "$T/console0"
	start_pty --pty-link="$T/console"
	ln -sfn /dev/null "$T/console0"
	stop_daemon
	[ "$(readlink "$T/console0")" = /dev/null ]
}

@test "--pty-link without the pty backend is a usage error" {
	run "$DAEMON" --socket-path="$T/s" --backend=network --pty-link="$T/c"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--pty-link needs --backend=pty"* ]]
}
