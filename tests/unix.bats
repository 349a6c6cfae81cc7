#!/usr/bin/env bats
# The unix backend: consoles on UNIX sockets --unix-path + k, reached with
# socat.  The frontend harness plays the guest.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# start_unix ARGS...: one device on $T/s0, console k on $T/ck, extra ARGS.
start_unix() {
	start_daemon --socket-path="$T/s" --backend=unix --unix-path="$T/c" "$@"
}

# connect NAME PATH: a socat client of PATH in the background; what it
# receives goes to $T/NAME.out, what is written to $T/NAME.in it sends
# (opened on fd 7 by the caller when it wants to type).
connect() {
	mkfifo "$T/$1.in"
	socat - "UNIX-CONNECT:$2" <"$T/$1.in" >"$T/$1.out" 2>"$T/$1.err" 3>&- &
	BG_PIDS+=($!)
}

# has FILE TEXT: FILE holds TEXT.
has() { grep -qF -- "$2" "$1" 2>/dev/null; }

@test "guest output reaches a socat client" {
	start_unix
	grep -q "console 0: device 0 port 0: unix $T/c0" "$T/daemon.log"
	connect a "$T/c0"
	exec 7>"$T/a.in"	# socat connects once its input has a writer
	wait_log "$T/daemon.log" "console 0: client 1 connected$"
	fe "$T/s0" init handshake write 'hello over unix\n'
	wait_until 10 has "$T/a.out" "hello over unix" || { show_logs; return 1; }
}

@test "what a socat client types reaches the guest" {
	start_unix
	connect a "$T/c0"
	exec 7>"$T/a.in"
	wait_log "$T/daemon.log" "console 0: client 1 connected$"
	printf typed >&7
	fe "$T/s0" init handshake expect typed
}

@test "a socat client that leaves is seen disconnected" {
	start_unix
	connect a "$T/c0"
	exec 7>"$T/a.in"
	wait_log "$T/daemon.log" "console 0: client 1 connected$"
	exec 7>&-
	wait_log "$T/daemon.log" "console 0: client 1 disconnected"
}

@test "the alias uds selects the unix backend" {
	start_daemon --socket-path="$T/s" --backend=uds --unix-path="$T/c"
	[ -S "$T/c0" ]
}

@test "--backend=unix without --unix-path is a usage error" {
	run "$DAEMON" --socket-path="$T/t" --backend=unix
	[ "$status" -eq 2 ]
	[[ "$output" == *"--backend=unix needs --unix-path"* ]]
}

@test "--unix-path without --backend=unix is a usage error" {
	run "$DAEMON" --socket-path="$T/t" --backend=network --unix-path="$T/d"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--unix-path needs --backend=unix"* ]]
}

@test "unix listed twice, once by its alias uds, is a usage error" {
	run "$DAEMON" --socket-path="$T/t" --backend=unix,uds --unix-path="$T/d"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unix is listed twice"* ]]
}

@test "the sockets have mode 0600 whatever the umask" {
	umask 000
	start_daemon --socket-path="$T/s" --socket-count=2 --backend=unix \
		--unix-path="$T/c"
	[ "$(stat -c %a "$T/c0")" = 600 ]
	[ "$(stat -c %a "$T/c1")" = 600 ]
	[ -S "$T/c1" ]
}

@test "a stale unix socket is replaced" {
	# a daemon killed with SIGKILL leaves its socket behind
	start_unix
	kill -KILL "$DAEMON_PID"
	wait_gone "$DAEMON_PID"
	[ -S "$T/c0" ]
	rm -f "$T/s0"
	start_unix
	[ "$(grep -c 'exists\|listening there' "$T/daemon.log")" -eq 0 ]
	connect a "$T/c0"
	exec 7>"$T/a.in"
	wait_log "$T/daemon.log" "client 1 connected$"
	fe "$T/s0" init handshake write 'new daemon\n'
	wait_until 10 has "$T/a.out" "new daemon"
}

@test "a unix socket another daemon listens on is not taken over: status 1, one line" {
	start_unix
	run "$DAEMON" --socket-path="$T/t" --backend=unix --unix-path="$T/c"
	[ "$status" -eq 1 ]
	# one line: nothing is said before everything is set up
	[ "$output" = "vhost-device-console: $T/c0: another process is listening there" ]
}

@test "a regular file at the unix path is left alone and the start fails with status 1" {
	echo keep >"$T/f0"
	run "$DAEMON" --socket-path="$T/u" --backend=unix --unix-path="$T/f"
	[ "$status" -eq 1 ]
	[ "$output" = "vhost-device-console: $T/f0 exists and is not a socket" ]
	[ "$(cat "$T/f0")" = keep ]
	[ ! -e "$T/u0" ]      # the vhost-user socket is cleaned up too
}

@test "the sockets are removed on SIGTERM" {
	start_daemon --socket-path="$T/s" --socket-count=2 --backend=unix \
		--unix-path="$T/c"
	[ -S "$T/c0" ]
	[ -S "$T/c1" ]
	connect a "$T/c1"
	exec 7>"$T/a.in"
	wait_log "$T/daemon.log" "console 1: client 1 connected$"
	stop_daemon
	[ "$DAEMON_RC" = 0 ]
	[ ! -e "$T/c0" ]
	[ ! -e "$T/c1" ]
	exec 7>&-
}

@test "--backend=network,unix serves the same console on both" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network,unix \
		--tcp-port="$PORT" --unix-path="$T/c"
	grep -q "console 0: device 0 port 0: tcp 127.0.0.1:$PORT; unix $T/c0" "$T/daemon.log"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	connect a "$T/c0"
	exec 7>"$T/a.in"
	wait_until 5 eval '[ "$(grep -c "client .* connected" "$T/daemon.log")" -eq 2 ]'
	"$FRONTEND" "$T/s0" init handshake write 'to both\n' \
		expect-all 2 from-tcp from-unix 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_line 5 "to both"
	wait_until 10 has "$T/a.out" "to both" || { show_logs; return 1; }
	printf from-tcp >&5
	printf from-unix >&7
	wait "$f" || { show_logs; return 1; }
	exec 7>&-
}

@test "the 17th client is told in one line and closed; the others stay" {
	start_unix
	local i
	for i in $(seq 16); do
		connect "c$i" "$T/c0"
		exec {fd}>"$T/c$i.in"
	done
	wait_until 10 eval '[ "$(grep -c "client .* connected" "$T/daemon.log")" -eq 16 ]'
	run timeout 10 socat -u "UNIX-CONNECT:$T/c0" -
	[ "$status" -eq 0 ]
	[ "$output" = $'vhost-device-console: console 0 has 16 clients already; try again later\r' ]
	grep -q "console 0: refusing client 17: too many clients" "$T/daemon.log"
	fe "$T/s0" init handshake write 'still here\n'
	wait_until 10 has "$T/c16.out" "still here"
}

@test "--unix-mode and --unix-group open the unix sockets to a group" {
	start_daemon --socket-path="$T/s" --backend=unix --unix-path="$T/c" \
		--unix-mode=0660 --unix-group="$(id -gn)"
	[ "$(stat -c %a "$T/c0")" = 660 ]
	[ "$(stat -c %g "$T/c0")" = "$(id -g)" ]
	# the vhost-user socket keeps its own default
	[ "$(stat -c %a "$T/s0")" = 600 ]
}

@test "read-only unix: a viewer gets the history and the output; what it types never reaches the guest, counted and logged" {
	start_unix --read-only=unix
	"$FRONTEND" "$T/s0" init handshake write 'history over unix\n' hold "$T/go" \
		write 'live over unix\n' hold "$T/done" 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_log "$T/daemon.log" "the guest's console port is ready"
	connect v "$T/c0"
	exec 7>"$T/v.in"
	wait_log "$T/daemon.log" "console 0: client 1 connected \\(read-only\\)$"
	wait_until 10 has "$T/v.out" "history over unix" || { show_logs; return 1; }
	printf 'typed by a viewer' >&7
	touch "$T/go"
	wait_until 10 has "$T/v.out" "live over unix" || { show_logs; return 1; }
	exec 7>&-
	wait_log "$T/daemon.log" "console 0: client 1 \\(read-only\\) disconnected; 17 bytes of its input discarded$" ||
		{ show_logs; return 1; }
	kill -USR1 "$DAEMON_PID"
	wait_log "$T/daemon.log" "status:   console 0 .*, in 0, .*; 0 writers, 0 viewers; viewers typed 17 bytes, discarded$" ||
		{ show_logs; return 1; }
	touch "$T/done"
	wait "$f" || { show_logs; return 1; }
}
