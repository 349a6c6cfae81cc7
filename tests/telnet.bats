#!/usr/bin/env bats
# --telnet: the network backend speaks telnet, so that a plain
# `telnet HOST PORT` gives a character-mode console with its window size.

load helpers

PTYRUN=$TOP/tests/ptyrun

setup() { common_setup; }
teardown() { common_teardown; }

start_telnet() {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" --telnet "$@"
}

# hex FILE: its bytes as one line of hex pairs.
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# telnet_client: a TCP client on fd 5 that has read the daemon's offer
# into $T/offer (9 bytes).
telnet_client() {
	start_telnet
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	timeout 5 dd bs=9 count=1 iflag=fullblock status=none <&5 >"$T/offer"
}

@test "telnet: a client is offered WILL ECHO, WILL SUPPRESS-GO-AHEAD, DO NAWS" {
	telnet_client
	[ "$(hex "$T/offer")" = fffb01fffb03fffd1f ] || { hex "$T/offer"; return 1; }
}

@test "telnet: IAC in the guest's output is doubled" {
	telnet_client
	fe "$T/s0" init handshake write 'a\xffb\n'
	read_notices 5 'frontend connected' 'the guest opened the console'
	timeout 5 dd bs=5 count=1 iflag=fullblock status=none <&5 >"$T/out"
	[ "$(hex "$T/out")" = 61ffff620a ] || { hex "$T/out"; return 1; }
}

@test "telnet: input is decoded: commands dropped, IAC IAC and CR NUL unescaped" {
	telnet_client
	# DO ECHO (an answer), x IAC IAC y, CR NUL, |
	printf '\377\375\001x\377\377y\r\000|' >&5
	fe "$T/s0" init handshake expect 'x\xffy\r|'
}

@test "telnet: NAWS sets the console size" {
	telnet_client
	"$FRONTEND" "$T/s0" init --size handshake --resize=80x24 write 'READY\n' \
		expect-resize 100 30 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_line 5 READY
	# NAWS: 100 columns, 30 rows
	printf '\377\372\037\000\144\000\036\377\360' >&5
	wait "$f" || { cat "$T/fe.err"; return 1; }
}

@test "telnet: Debian's telnet client gets a working console, and its window size" {
	command -v telnet >/dev/null || skip "no telnet (package telnet)"
	# ptyrun's window is 80x24: with --size the same, telnet's first
	# report (whenever it lands) changes nothing
	start_telnet --size=80x24
	mkfifo "$T/in"
	"$PTYRUN" -i "$T/in" -o "$T/tty.out" -t "$T/tty" -- telnet 127.0.0.1 "$PORT" \
		</dev/null >/dev/null 2>"$T/ptyrun.err" 3>&- &
	BG_PIDS+=("$!")
	wait_log "$T/daemon.log" 'client .* connected'
	"$FRONTEND" "$T/s0" init --size handshake --resize=80x24 write 'TELNET READY\n' \
		expect 'typed\r' write 'GOT IT\n' expect-resize 100 24 write 'RESIZED\n' \
		2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_until 10 grep -q 'TELNET READY' "$T/tty.out"
	# character mode: keys go out as typed, Enter as CR (CR NUL on the wire)
	timeout 5 bash -c 'printf "typed\r" >"$1"' _ "$T/in"
	wait_until 10 grep -q 'GOT IT' "$T/tty.out"
	# one dimension: stty sets each with its own ioctl, telnet reports each
	stty -F "$(cat "$T/tty")" cols 100
	wait_until 10 grep -q 'RESIZED' "$T/tty.out"
	wait "$f" || { cat "$T/fe.err"; return 1; }
}

@test "a flood of window-size reports while the guest gives no control buffers: PORT_OPEN still reaches it, and one RESIZE with the latest size" {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" --telnet \
		--size=80x24 --port=-
	# The guest announces itself and both ports but gives no control
	# receive buffer until $T/go exists; 6 = PORT_OPEN, 3 = PORT_READY.
	"$FRONTEND" "$T/s0" init --size --ports=2 ctrl-send 0xffffffff 0 1 ctrl-send 0 3 1 \
		ctrl-send 1 3 1 hold "$T/go" ctrl-give 16 \
		ctrl-expect 0 1 1  1 1 1  0 4 1  0 6 1  1 6 1 \
		expect-resize 123 45 ctrl-none \
		2>"$T/fe.err" 3>&- &
	local f=$! i naws=
	BG_PIDS+=("$f")
	wait_log "$T/daemon.log" "the guest's port 1 is ready"
	# 1000 NAWS reports, 100x30 and 101x30 in turn, the last 123x45
	for (( i = 0; i < 500; i++ )); do
		naws+='\377\372\037\000\144\000\036\377\360\377\372\037\000\145\000\036\377\360'
	done
	naws+='\377\372\037\000\173\000\055\377\360'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf "$naws" >&5
	exec 5>&-
	# its EOF is seen after all it sent was parsed
	wait_log "$T/daemon.log" "console 0: client .* disconnected"
	# a client on the generic port: the host side opens
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	wait_log "$T/daemon.log" "console 1: client .* connected"
	touch "$T/go"
	wait "$f" || { cat "$T/fe.err"; show_logs; return 1; }
	exec 6>&-
}

@test "--telnet without the network backend is a usage error" {
	run "$DAEMON" --socket-path="$T/s" --telnet
	[ "$status" -eq 2 ]
	[[ "$output" == *"--telnet needs --backend=network"* ]]
}

@test "telnet: 256 KiB of 0xff to eight clients on one device does not hold up another device's output past 1 s" {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --socket-count=2 --backend=network \
		--tcp-port="$PORT" --telnet
	local i fd f0 f1 ff t0 t1
	# eight telnet clients that read all they get; the first one into a file
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	cat <&"$fd" >"$T/reader0" 3>&- &
	BG_PIDS+=("$!")
	for (( i = 1; i < 8; i++ )); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		cat <&"$fd" >/dev/null 3>&- &
		BG_PIDS+=("$!")
	done
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	wait_until 10 eval '[ "$(grep -c "client .* connected" "$T/daemon.log")" -eq 9 ]'
	"$FRONTEND" "$T/s1" init handshake write 'device 1 up\n' hold "$T/go" \
		write 'ping\n' 2>"$T/fe1.err" 3>&- &
	f1=$!
	BG_PIDS+=("$f1")
	read_until_line 6 'device 1 up'
	ff=$(printf '\\xff%.0s' $(seq 4096))
	"$FRONTEND" "$T/s0" init handshake write-burst 64 "$ff" 2>"$T/fe0.err" 3>&- &
	f0=$!
	BG_PIDS+=("$f0")
	# the 0xff bytes are flowing: now device 1 writes
	wait_until 10 eval '[ "$(stat -c %s "$T/reader0")" -gt 1000 ]'
	t0=$(date +%s%N)
	touch "$T/go"
	read_until_line 6 'ping'
	t1=$(date +%s%N)
	echo "device 1's line took $(( (t1 - t0) / 1000000 )) ms"
	wait "$f1" || { cat "$T/fe1.err"; return 1; }
	wait "$f0" || { cat "$T/fe0.err"; return 1; }
	[ $(( (t1 - t0) / 1000000 )) -lt 1000 ]
}

@test "telnet: a send cut between an IAC and its double sends the double first, then the skip notice, then the output after the gap" {
	run "$TOP/tests/sessunit" iac-notice
	echo "$output"
	[ "$status" -eq 0 ]
}
