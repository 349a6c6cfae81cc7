#!/usr/bin/env bats
# Notices: a console client is told, on a line of its own, when the
# frontend or the guest's console comes and goes and when the daemon
# stops ("\r\n[vhost-device-console: ...]\r\n", session.h); a generic
# port's stream is data and never gets one.  And --quiet.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# capture PORT FILE: a client of TCP PORT that writes what it gets to
# FILE until EOF; sets CAP_PID.  Waits until the daemon has it.
capture() {
	local n
	n=$(clients_seen)
	timeout 30 bash -c 'exec 5<>"/dev/tcp/127.0.0.1/$1"; cat <&5 >"$2"' _ "$1" "$2" 3>&- &
	CAP_PID=$!
	BG_PIDS+=("$CAP_PID")
	wait_until 10 more_clients_than "$n"
}

clients_seen() { grep -c 'client .* connected$' "$T/daemon.log" || true; }
more_clients_than() { [ "$(clients_seen)" -gt "$1" ]; }

# lines FILE: its lines, the notices' "\r\n" taken off, one per line.
lines() {
	tr -d '\r' <"$1" | grep -v '^$'
}

has_notice() {
	grep -qF "[vhost-device-console: $2]" "$1"
}

@test "a console client is told when the frontend connects and disconnects" {
	start_one
	capture "$PORT" "$T/c.out"
	fe "$T/s0" init handshake write 'from the guest\n'
	wait_until 10 has_notice "$T/c.out" 'frontend disconnected'
	run lines "$T/c.out"
	[ "${lines[0]}" = "[vhost-device-console: frontend connected]" ]
	[ "${lines[2]}" = "from the guest" ]
	[ "${lines[-1]}" = "[vhost-device-console: frontend disconnected]" ]
}

@test "a console client is told when the guest closes and opens its console, in order with its output" {
	start_one
	capture "$PORT" "$T/c.out"
	fe "$T/s0" init handshake write 'one\n' ctrl-send 0 6 0 write 'two\n' \
		ctrl-send 0 6 1 write 'three\n'
	wait_until 10 has_notice "$T/c.out" 'frontend disconnected'
	lines "$T/c.out" >"$T/lines"
	diff - "$T/lines" <<'END'
[vhost-device-console: frontend connected]
[vhost-device-console: the guest opened the console]
one
[vhost-device-console: the guest closed the console]
two
[vhost-device-console: the guest opened the console]
three
[vhost-device-console: the guest closed the console]
[vhost-device-console: frontend disconnected]
END
}

@test "on SIGTERM a console client reads 'stopping' before EOF" {
	start_one
	fe "$T/s0" init handshake write 'last words\n'
	capture "$PORT" "$T/c.out"
	stop_daemon
	wait_gone "$CAP_PID" 10
	[ "$(tail -c 100 "$T/c.out")" = "last words"$'\n'"[vhost-device-console: stopping]"$'\r' ]
}

# expect FILE: FILE holds exactly the bytes printf makes of the rest.
expect_bytes() {
	local file=$1; shift
	# shellcheck disable=SC2059
	cmp "$file" <(printf "$@") || { od -c "$file" | head -20; return 1; }
}

@test "a notice ends the guest's unfinished line first, and adds no blank line after a finished one" {
	start_one
	capture "$PORT" "$T/c.out"
	fe "$T/s0" init handshake write 'whole\n' ctrl-send 0 6 0 write 'part' \
		ctrl-send 0 6 1 write 'end\n'
	wait_until 10 has_notice "$T/c.out" 'frontend disconnected'
	expect_bytes "$T/c.out" '%b\r\n' '[vhost-device-console: frontend connected]' \
		'[vhost-device-console: the guest opened the console]' \
		'whole\n[vhost-device-console: the guest closed the console]' \
		'part\r\n[vhost-device-console: the guest opened the console]' \
		'end\n[vhost-device-console: the guest closed the console]' \
		'[vhost-device-console: frontend disconnected]'
}

@test "notices in a row have no blank line between them" {
	start_one
	capture "$PORT" "$T/c.out"
	fe "$T/s0" init handshake
	wait_until 10 has_notice "$T/c.out" 'frontend disconnected'
	expect_bytes "$T/c.out" '%b\r\n' '[vhost-device-console: frontend connected]' \
		'[vhost-device-console: the guest opened the console]' \
		'[vhost-device-console: the guest closed the console]' \
		'[vhost-device-console: frontend disconnected]'
}

@test "a generic port's client never gets a notice: its stream stays byte-exact" {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" --port=data
	capture "$((PORT + 1))" "$T/data.out"
	# the frontend comes, the guest opens and closes port 1, the
	# frontend goes, the daemon stops: nothing of it is port 1's data
	# (6 = PORT_OPEN, 3 = PORT_READY)
	fe "$T/s0" init --ports=2 ctrl-send 0xffffffff 0 1 ctrl-send 0 3 1 \
		ctrl-send 1 3 1 ctrl-send 0 6 1 ctrl-send 1 6 1 ctrl-send 1 6 0
	fe "$T/s0" init --ports=2
	stop_daemon
	wait_gone "$CAP_PID" 10
	[ ! -s "$T/data.out" ]
}

@test "a telnet client gets the notices too" {
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" --telnet
	PORT=$(sed -n 's/.*tcp 127.0.0.1:\([0-9]*\).*/\1/p' "$T/daemon.log")
	capture "$PORT" "$T/c.out"
	fe "$T/s0" init handshake write 'hi\n'
	wait_until 10 has_notice "$T/c.out" 'frontend disconnected'
	has_notice "$T/c.out" 'frontend connected'
}

@test "--quiet leaves out routine lines (clients and the frontend coming and going), not the start-up lines" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" --quiet
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'served\n'
	read_line 5 served
	exec 5<&-
	fe "$T/s0" init handshake
	stop_daemon
	# (a bare "! grep" would not fail the test: set -e ignores it)
	run grep -E 'client .* (connected|disconnected)|frontend (connected|disconnected)|is ready' "$T/daemon.log"
	[ "$status" -eq 1 ] || { echo "routine lines under --quiet: $output"; return 1; }
	grep -q 'ready: 1 device listening' "$T/daemon.log"
	grep -q 'shutting down' "$T/daemon.log"
}
