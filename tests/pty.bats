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

# status_says_clients K N: a SIGUSR1 status report says console K has N
# clients (each call asks for a new one).
status_says_clients() {
	local k=$1 before line
	before=$(grep -c "status:   console $k " "$T/daemon.log" || true)
	kill -USR1 "$DAEMON_PID"
	wait_until 10 eval '[ "$(grep -c "status:   console $k " "$T/daemon.log")" -gt "$before" ]' ||
		return 1
	line=$(grep "status:   console $k " "$T/daemon.log" | tail -1)
	[[ "$line" == *", $2 client"[s,]* ]]
}

# wait_clients [-k K] N: until the status says console K (0) has N clients
# (the daemon learns of an open or close in its next pass).
wait_clients() {
	local k=0
	[ "$1" = -k ] && { k=$2; shift 2; }
	wait_until 10 status_says_clients "$k" "$1" && return 0
	echo "console $k: want $1 clients: $(grep "status:   console $k " "$T/daemon.log" | tail -1)"
	return 1
}

# picocom_start: picocom on the slave, on a terminal of its own (ptyrun);
# what it shows goes to $T/pico.out, $T/pico.in is its keyboard.
picocom_start() {
	"$PTYRUN" -i "$T/pico.in" -o "$T/pico.out" -p "$T/pico.pid" -- \
		picocom "$SLAVE" 3>&- &
	PICO=$!
	BG_PIDS+=("$PICO")
}

# picocom_quit: C-a C-x, and it is gone.
picocom_quit() {
	printf '\001\030' >"$T/pico.in"
	wait_gone "$PICO" 10 || { echo "picocom did not quit"; return 1; }
}

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

@test "pty: a terminal program that opens the slave shows the history, after its own flush of the pty" {
	start_pty
	"$FRONTEND" "$T/s0" init handshake write 'HELLO-HISTORY\r\n' hold "$T/go" \
		2>"$T/fe.err" 3>&- &
	BG_PIDS+=("$!")
	wait_until 10 eval 'grep -q "out 15 bytes" "$T/daemon.log" || { kill -USR1 $DAEMON_PID; false; }'
	picocom_start
	wait_until 10 grep -q HELLO-HISTORY "$T/pico.out" ||
		{ echo "picocom shows:"; cat -v "$T/pico.out"; show_logs; return 1; }
	picocom_quit
	# The replay surely before the flush: a shell opens the slave first
	# (and reads nothing); once the status counts it, the history is in
	# the pty, and picocom's flush throws it away.
	rm "$T/pico.out"
	exec 5<>"$SLAVE"
	wait_clients 1
	picocom_start
	wait_until 10 grep -q HELLO-HISTORY "$T/pico.out" ||
		{ echo "picocom shows:"; cat -v "$T/pico.out"; show_logs; return 1; }
	picocom_quit
	exec 5>&-
}

@test "pty: it counts as a client only while a program has the slave open, known by events, not by polling" {
	start_pty
	wait_clients 0
	# nobody has the slave open: the daemon sleeps in select()
	local t0; t0=$(cpu_ticks)
	sleep 1   # the observation window itself, not a wait for a condition
	[ $(( $(cpu_ticks) - t0 )) -lt 20 ] || { echo "daemon busy: $(( $(cpu_ticks) - t0 )) ticks in 1 s"; return 1; }
	picocom_start
	wait_until 10 grep -q 'Terminal ready' "$T/pico.out"
	wait_clients 1
	picocom_quit
	wait_clients 0
	# a shell's redirection counts as well, and two at once count once
	exec 5<>"$SLAVE" 6<"$SLAVE"
	wait_clients 1
	exec 5>&-
	wait_clients 1
	exec 6<&-
	wait_clients 0
}

@test "pty: a generic port is open to the guest while a program has its slave open, and closed when it closes" {
	start_daemon --socket-path="$T/s" --backend=pty --port=-
	local slave1
	slave1=$(sed -n 's/.*console 1: device 0 port 1: pty \(\/dev\/pts\/[0-9]*\).*/\1/p' "$T/daemon.log")
	[ -c "$slave1" ] || { echo "no pty for console 1"; cat "$T/daemon.log"; return 1; }
	# 6 = PORT_OPEN, 3 = PORT_READY, 1 = PORT_ADD, 4 = CONSOLE_PORT
	"$FRONTEND" "$T/s0" init --ports=2 ctrl-send 0xffffffff 0 1 \
		ctrl-send 0 3 1 ctrl-send 1 3 1 ctrl-give 16 \
		ctrl-expect 0 1 1  1 1 1  0 4 1  0 6 1  1 6 0  1 6 1  1 6 0 \
		2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_log "$T/daemon.log" "the guest's port 1 is ready"
	exec 5<>"$slave1"
	wait_clients -k 1 1   # it opened in a pass of its own before it closes
	exec 5>&-
	wait "$f" || { cat "$T/fe.err"; show_logs; return 1; }
}
