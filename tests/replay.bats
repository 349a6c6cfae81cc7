#!/usr/bin/env bats
# What a new client is replayed of the history (replay.h): nothing a
# terminal answers, from a line start or the last full-screen reset; and
# no replay at all on a generic (data) port.  The frontend harness plays
# the guest; TCP clients, and a terminal emulator (tmux), play the users.

load helpers
load uml

setup() { common_setup; }
teardown() {
	local rc=0
	[ -n "${TMUX_SOCK:-}" ] && tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
	uml_con_close
	uml_stop || rc=1
	common_teardown || rc=1
	return $rc
}

# tmux_shows REGEX: a line of the tmux pane matches.
tmux_shows() {
	tmux -S "$TMUX_SOCK" capture-pane -p | grep -q -e "$1"
}

# start_net ARGS...: one device, network backend on $PORT, extra ARGS.
start_net() {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" "$@"
}

# expect_bytes FD FILE TEXT: the next bytes on FD are exactly printf TEXT.
expect_bytes() {
	printf "$3" >"$2.want"
	timeout 10 head -c "$(stat -c %s "$2.want")" <&"$1" >"$2" || true
	cmp "$2" "$2.want" || { od -c "$2" | head -20; show_logs; return 1; }
}

QUERIES='prompt$ \x1b[6nls\r\nprompt$ \x1b[6n\x1b[c\x1b]11;?\x07\x1b[5n\x1b[?6n\x1b[>c\x1b]4;1;?\x1b\\\x1bP$qm\x1b\\\x1b[18t\x05done\r\n'

@test "replay: a new client gets the history without the queries a terminal answers; live output keeps them" {
	start_net --log-file="$T/log"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/daemon.log" "client .* connected"
	fe "$T/s0" init handshake write "boot\n$QUERIES"
	# the client connected before got them live, as the guest wrote them
	read_notices 5 'frontend connected' 'the guest opened the console'
	expect_bytes 5 "$T/live" "boot\n$QUERIES"
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	expect_bytes 6 "$T/replay" 'boot\nprompt$ ls\r\nprompt$ done\r\n'
	# and what the guest asks after a client came is live: it gets it
	fe "$T/s0" init handshake write 'again\x1b[6n\n'
	read_notices 6 'frontend connected' 'the guest opened the console'
	expect_bytes 6 "$T/after" 'again\x1b[6n\n'
}

@test "replay: a history cut in the middle of a line starts at the next line" {
	start_net --history=100
	fe "$T/s0" init handshake write "$(printf 'x%.0s' {1..150})"'\x1b]0;ti\x1b\\tle\nwhole line\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	expect_bytes 5 "$T/replay" 'whole line\n'
	fe "$T/s0" init handshake write 'LIVE\n'
	read_line 5 LIVE
}

@test "replay: a full-screen program's history starts at its last full-screen reset, on its screen" {
	start_net
	fe "$T/s0" init handshake write 'shell$ vi\r\n\x1b[?1049h\x1b[H\x1b[2Jscreen 1\x1b[H\x1b[Jscreen 2\x1b[Hscreen 3\x1b[H\x1b[0Jscreen 4'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	expect_bytes 5 "$T/replay" '\x1b[?1049h\x1b[H\x1b[0Jscreen 4'
	fe "$T/s0" init handshake write '\x1b[?1049lshell$ \x1b[2Jcleared'
	# the notices end the unfinished screen line first (\$(...) drops
	# the last notice's LF: \n puts it back)
	expect_bytes 5 "$T/live" "\r\n$(notices 'frontend connected' \
		'the guest opened the console')"'\n\x1b[?1049lshell$ \x1b[2Jcleared'
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	expect_bytes 6 "$T/replay2" '\x1b[2Jcleared'
}

@test "replay: a query cut by the ring's wrap is still left out" {
	# --history=65536 is the ring: 65530 bytes, then the query across the
	# wrap, then more; the history kept starts with a line start
	start_net --history=65536
	fe "$T/s0" init handshake write "$(printf 'y%.0s' {1..65529})"'\n' \
		write 'a\x1b[6nb\x1b]11;?\x07c\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	expect_bytes 5 "$T/replay" 'abc\n'
}

@test "replay: a terminal (tmux running socat) that attaches sends the guest not one byte" {
	command -v tmux >/dev/null || skip "no tmux"
	start_net
	fe "$T/s0" init handshake \
		write 'prompt$ \x1b[6n\x1b[c\x1b]11;?\x07\x1b[>c\x05\r\nprompt$ '
	# the guest echoes what it gets: its first bytes must be what is typed
	"$FRONTEND" --timeout=20 "$T/s0" init handshake echo-loop 4 \
		2>"$T/fe.err" 3>&- &
	local guest=$!
	BG_PIDS+=("$guest")
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	expect_bytes 5 "$T/replay" 'prompt$ \r\nprompt$ '
	TMUX_SOCK=$T/tmux.sock
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -x 80 -y 24 \
		"socat -,raw,echo=0 TCP:127.0.0.1:$PORT"
	# the replay is on tmux's screen: answers, if any, went before it
	wait_until 10 tmux_shows '^prompt\$'
	tmux -S "$TMUX_SOCK" send-keys -l MARK
	# the guest's echo, the notices of its arrival left out: MARK first
	timeout 10 bash -c 'until [[ "$s" == *MARK ]]; do
		IFS= read -r -N1 c || exit 1; s+=$c; done
		printf "%s" "$s"' <&5 >"$T/echo"
	[ "$(sed 's/\[vhost-device-console: [a-z ]*\]\r$//' "$T/echo" | tr -d '\r\n')" = MARK ] ||
		{ od -c "$T/echo"; return 1; }
	wait "$guest" || { cat "$T/fe.err"; return 1; }
}

@test "data ports: a client that reconnects does not get the old data again; the console still replays" {
	command -v "$UML_BIN" >/dev/null || skip "no $UML_BIN (package user-mode-linux)"
	uml_rootfs "$T/root"
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/vc.sock" --backend=network --tcp-port="$PORT" \
		--port=data
	uml_boot "$T/vc.sock0"
	uml_wait_ready 60
	wait_log "$T/daemon.log" "console 1: the guest's port 1 \"data\" is ready"
	uml_con_open "$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	uml_con_send "echo old-data >/dev/vport0p1; echo sent-\$((40+1))\n"
	read_line 6 "old-data"
	uml_con_expect_line "sent-41" 20
	exec 6>&-
	wait_log "$T/daemon.log" "console 1: client .* disconnected"
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	uml_con_send "echo new-data >/dev/vport0p1\n"
	read_line 6 "new-data"
	# the console port still replays its history to a new client
	uml_con_open "$PORT"
	wait_until 10 grep -q "sent-41" "$UML_CON_OUT"
}
