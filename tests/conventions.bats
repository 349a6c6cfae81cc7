#!/usr/bin/env bats
# The vhost-user "backend program conventions": --print-capabilities,
# --fd, and readiness for service managers (NOTIFY_SOCKET).

bats_require_minimum_version 1.5.0
load helpers

FDRUN=$TOP/tests/fdrun

setup() { common_setup; }
teardown() { common_teardown; }

@test "--print-capabilities prints {\"type\": \"console\"} and exits 0, whatever else is given" {
	run "$DAEMON" --print-capabilities --frobnicate --socket-count=0
	[ "$status" -eq 0 ]
	[ "$output" = '{"type": "console"}' ]
	printf '%s' "$output" | jq -e '. == {"type": "console"}' >/dev/null
}

# start_fd ARGS...: the daemon behind tests/fdrun on $T/fe (the frontend's
# end), network backend on $PORT.  Sets DAEMON_PID.
start_fd() {
	PORT=$(free_port)
	"$FDRUN" "$T/fe" "$DAEMON" --backend=network --tcp-port="$PORT" "$@" \
		</dev/null >"$T/daemon.out" 2>"$T/daemon.log" 3>&- &
	DAEMON_PID=$!
	BG_PIDS+=("$DAEMON_PID")
	wait_until 5 test -S "$T/fe"
}

@test "--fd: serves the connection it was given" {
	start_fd --log-file="$T/log"
	fe "$T/fe" init handshake write 'over a passed fd\n'
	grep -q "device 0: vhost-user connection fd 3, 1 port" "$T/daemon.log"
	wait_until 10 grep -q "over a passed fd" "$T/log0"
}

@test "--fd: an orderly close of the connection exits 0" {
	start_fd
	fe "$T/fe" init handshake close
	wait_gone "$DAEMON_PID" 10
	local rc=0
	wait "$DAEMON_PID" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$T/daemon.log"; return 1; }
	grep -q "device 0: frontend disconnected$" "$T/daemon.log"
}

@test "--fd: a protocol error ends the daemon with status 1" {
	start_fd
	# a header claiming a 65535-byte payload: framing that cannot be trusted
	printf '\005\000\000\000\001\000\000\000\377\377\000\000' |
		timeout 5 socat -u - "UNIX-CONNECT:$T/fe"
	wait_gone "$DAEMON_PID" 10
	local rc=0
	wait "$DAEMON_PID" || rc=$?
	[ "$rc" -eq 1 ] || { echo "status $rc"; cat "$T/daemon.log"; return 1; }
	grep -q "oversized message" "$T/daemon.log"
}

@test "--fd on something that is not a socket fails with status 1" {
	run --separate-stderr "$DAEMON" --fd=0 --backend=network --tcp-port="$(free_port)" </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"--fd=0: not a connected stream socket"* ]]
}

@test "--fd with --socket-path is a usage error" {
	run --separate-stderr "$DAEMON" --fd=3 --socket-path="$T/s"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"--fd and --socket-path exclude each other"* ]]
}

# start_notified: the daemon with NOTIFY_SOCKET; what it sends there is
# appended to $T/notified.
start_notified() {
	socat -u "UNIX-RECV:$T/notify" "OPEN:$T/notified,creat,append" &
	BG_PIDS+=("$!")
	wait_until 5 test -S "$T/notify"
	NOTIFY_SOCKET=$T/notify start_daemon --socket-path="$T/s" --backend=network \
		--tcp-port="$(free_port)"
}

@test "NOTIFY_SOCKET gets READY=1 once every socket listens" {
	start_notified
	wait_until 5 grep -q 'READY=1' "$T/notified"
	test -S "$T/s0"
}

@test "NOTIFY_SOCKET gets STOPPING=1 at exit" {
	start_notified
	stop_daemon
	[ "$DAEMON_RC" -eq 0 ]
	wait_until 5 grep -q 'STOPPING=1' "$T/notified"
}

# install_to_root: make install into $T/root with PREFIX /opt/vc.
install_to_root() {
	make -s -C "$TOP" install DESTDIR="$T/root" PREFIX=/opt/vc >/dev/null
}

@test "make install DESTDIR= installs the binary and the man page" {
	install_to_root
	test -x "$T/root/opt/vc/bin/vhost-device-console"
	test -f "$T/root/opt/vc/share/man/man1/vhost-device-console.1"
}

@test "make install DESTDIR= installs the JSON description naming the installed binary" {
	install_to_root
	local json=$T/root/opt/vc/share/qemu/vhost-user/50-vhost-device-console.json
	grep -q '"type": "console"' "$json"
	grep -q '"binary": "/opt/vc/bin/vhost-device-console"' "$json"
	jq -e '.type == "console" and .binary == "/opt/vc/bin/vhost-device-console"
	       and (.description | length > 0)' "$json" >/dev/null
}

@test "make uninstall DESTDIR= removes what make install put there" {
	install_to_root
	make -s -C "$TOP" uninstall DESTDIR="$T/root" PREFIX=/opt/vc >/dev/null
	[ -z "$(find "$T/root" -type f)" ]
}
