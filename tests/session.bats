#!/usr/bin/env bats
# Shared sessions: history, log files, emergency write, terminal size.
# The frontend harness plays the guest; TCP clients play the users.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# start_net ARGS...: one device, network backend on $PORT, extra ARGS.
start_net() {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" "$@"
}

@test "a late client gets the history first, then live output" {
	# the log file says when the boot lines are in (so also in the history)
	start_net --log-file="$T/log"
	"$FRONTEND" "$T/s0" init handshake write 'boot line 1\nboot line 2\n' \
		hold "$T/go" write 'live line\n' 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_log "$T/log0" "boot line 2"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	read_line 5 "boot line 1"
	read_line 5 "boot line 2"
	touch "$T/go"
	read_line 5 "live line"
	wait "$f" || { cat "$T/fe.err"; return 1; }
}

# overflow_history: --history=100000, and the guest writes 2 x 8334 lines
# of 12 bytes (200016) while nobody is connected; $T/want is what a new
# client must get: the last 100000 bytes from their first line start.
overflow_history() {
	start_net --history=100000
	local half
	half=$(for i in $(seq 1 8334); do printf 'line %06d\\n' "$i"; done)
	fe "$T/s0" init handshake write "$half" write "$half"
	printf "$half$half" | tail -c 100000 | tail -n +2 >"$T/want"
}

@test "history: after twice --history bytes, a new client gets the last --history from its first line start" {
	overflow_history
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	timeout 10 head -c "$(stat -c %s "$T/want")" <&5 >"$T/got"
	cmp "$T/got" "$T/want"
}

@test "history: after the last --history bytes a new client gets live output, not a byte more" {
	overflow_history
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	timeout 10 head -c "$(stat -c %s "$T/want")" <&5 >/dev/null
	fe "$T/s0" init handshake write 'LIVE\n'
	read_line 5 "LIVE"
}

@test "history: the bytes that left it unread are counted at exit" {
	overflow_history
	stop_daemon
	grep -q 'console 0: 100016 bytes of guest output left the history before anyone read them' "$T/daemon.log"
}

@test "--history=0: a new client gets only what comes after it" {
	start_net --history=0
	fe "$T/s0" init handshake write 'before\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/daemon.log" "client .* connected"
	fe "$T/s0" init handshake write 'after\n'
	read_line 5 "after"
}

@test "history survives a guest reset" {
	start_net
	fe "$T/s0" init handshake write 'before reset\n' reset write 'after reset\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	read_line 5 "before reset"
	read_line 5 "after reset"
}

@test "history survives a frontend reconnect" {
	start_net
	fe "$T/s0" init handshake write 'first guest\n'
	fe "$T/s0" init handshake write 'second guest\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	read_line 5 "first guest"
	read_line 5 "second guest"
}

# two_clients: two TCP clients on fds 5 and 6, both seen connected.
two_clients() {
	start_net
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	wait_until 5 eval '[ "$(grep -c "client .* connected" "$T/daemon.log")" -eq 2 ]'
}

@test "two clients see the same output" {
	two_clients
	fe "$T/s0" init handshake write 'to both\n'
	read_line 5 "to both"
	read_line 6 "to both"
}

@test "two clients both type" {
	two_clients
	"$FRONTEND" "$T/s0" init handshake write 'READY\n' \
		expect-all 2 from-five from-six 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_line 5 READY
	read_line 6 READY
	printf from-five >&5
	printf from-six >&6
	wait "$f" || { cat "$T/fe.err"; return 1; }
}

@test "the log file holds everything, also while nobody is connected" {
	start_net --log-file="$T/log"
	fe "$T/s0" init handshake write 'one\n' write-bytes 200000 write '\ntwo\n'
	wait_until 5 grep -q '^two$' "$T/log0"
	cmp <(head -c 4 "$T/log0") <(printf 'one\n')
	cmp <(tail -c +5 "$T/log0" | head -c 200000) <("$FRONTEND" --pattern 200000)
	stop_daemon
	grep -q 'left the history before anyone read them (they are in the log file)' "$T/daemon.log"
}

@test "SIGHUP reopens the log files (for logrotate)" {
	start_net --log-file="$T/log"
	fe "$T/s0" init handshake write 'before rotation\n'
	wait_until 5 grep -q 'before rotation' "$T/log0"
	mv "$T/log0" "$T/log0.1"
	kill -HUP "$DAEMON_PID"
	wait_log "$T/daemon.log" "SIGHUP: log files reopened"
	fe "$T/s0" init handshake write 'after rotation\n'
	wait_until 5 grep -q 'after rotation' "$T/log0"
	refute grep -q 'before rotation' "$T/log0"
	refute grep -q 'after rotation' "$T/log0.1"
	kill -0 "$DAEMON_PID"
}

@test "a log write error is said once and the console goes on" {
	local DAEMON=fsize_daemon WRAP=
	start_net --log-file="$T/log"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'one\n' write-bytes 8192 write '\ntwo\n'
	read_line 5 one
	read_until_line 5 two
	[ "$(grep -c 'log file .*/log0: File too large' "$T/daemon.log")" -eq 1 ] || { show_logs; return 1; }
}

@test "a log path that is a FIFO stops the start with status 1, at once" {
	mkfifo "$T/fifo0"
	run timeout -k 1 5 "$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" \
		--log-file="$T/fifo"
	[ "$status" -eq 1 ] || { echo "status $status: $output"; return 1; }
	[[ "$output" == *"log file $T/fifo0: not a regular file (refused)"* ]]
	# and with a reader, where open() succeeds
	local r
	mkfifo "$T/rfifo0"
	exec {r}<>"$T/rfifo0"
	run timeout -k 1 5 "$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" \
		--log-file="$T/rfifo"
	exec {r}>&-
	[ "$status" -eq 1 ] || { echo "status $status: $output"; return 1; }
	[[ "$output" == *"log file $T/rfifo0: not a regular file (refused)"* ]]
}

@test "a log path that is a symlink stops the start with status 1" {
	: >"$T/target"
	ln -s "$T/target" "$T/link0"
	run timeout -k 1 5 "$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" \
		--log-file="$T/link"
	[ "$status" -eq 1 ] || { echo "status $status: $output"; return 1; }
	[[ "$output" == *"log file $T/link0: a symbolic link (refused)"* ]]
}

@test "SIGHUP with the log path turned into a FIFO: one line, no log until the next SIGHUP, the daemon never blocks" {
	start_net --log-file="$T/log"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	mv "$T/log0" "$T/log0.1"
	mkfifo "$T/log0"
	kill -HUP "$DAEMON_PID"
	wait_log "$T/daemon.log" "console 0: cannot reopen log file $T/log0: not a regular file \(refused\); not logging until the next SIGHUP"
	# the console goes on
	fe "$T/s0" init handshake write 'while not logging\n'
	read_until_line 5 'while not logging'
	rm "$T/log0"
	kill -HUP "$DAEMON_PID"
	wait_until 5 test -f "$T/log0"
	fe "$T/s0" init handshake write 'logging again\n'
	wait_until 5 grep -q 'logging again' "$T/log0"
	run grep -q 'while not logging' "$T/log0" "$T/log0.1"
	[ "$status" -eq 1 ]
	[ "$(grep -c 'cannot reopen log file' "$T/daemon.log")" -eq 1 ]
	# "reopened" is said for the SIGHUP that did, not for the refused one
	wait_log "$T/daemon.log" 'SIGHUP: log files reopened'
	[ "$(grep -c 'SIGHUP: log files reopened' "$T/daemon.log")" -eq 1 ]
	stop_daemon
	[ "$DAEMON_RC" = 0 ]
}

@test "a log file that cannot be opened stops the start with status 1" {
	run "$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" \
		--log-file="$T/no/such/dir/log"
	[ "$status" -eq 1 ]
	[[ "$output" == *"log file $T/no/such/dir/log0: No such file or directory"* ]]
}

@test "emergency write: emerg_wr at offset 8 and in a whole-config write, before the handshake" {
	start_net
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/daemon.log" "client .* connected"
	fe "$T/s0" init emerg-write A emerg-write --whole B handshake write 'C\n'
	# the handshake opens the console: its notice ends the line "AB"
	read_notices 5 'frontend connected'
	read_line 5 $'AB\r'
	read_notices 5 'the guest opened the console'
	read_line 5 C
}

@test "--size: RESIZE with the size after the handshake" {
	start_net --size=100x30
	fe "$T/s0" init --size handshake --resize=100x30
}

@test "--size: cols and rows in the config space" {
	start_net --size=100x30
	fe "$T/s0" init --size handshake --resize=100x30 expect-config-size 100 30
}

@test "--resize-order=rows-cols swaps RESIZE's payload for older guests" {
	start_net --size=100x30 --resize-order=rows-cols
	fe "$T/s0" init --size handshake --resize=30x100
}


@test "without F_SIZE negotiated no RESIZE is sent" {
	start_net --size=100x30
	# a RESIZE would be left over after the handshake: the harness fails
	fe "$T/s0" init handshake write 'no resize\n'
}

@test "SIGUSR1 prints what is served: frontend, driver, port state, clients, bytes" {
	start_net
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/daemon.log" "client .* connected"
	"$FRONTEND" "$T/s0" init handshake write 'twelve bytes' expect 'typed' \
		write '\nok\n' hold "$T/go" 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_notices 5 'frontend connected' 'the guest opened the console'
	read -r -N 12 -t 10 got <&5
	[ "$got" = "twelve bytes" ]
	printf typed >&5
	read_line 5 ""
	read_line 5 ok
	kill -USR1 "$DAEMON_PID"
	wait_log "$T/daemon.log" 'status:   console 0' 10
	grep -q "status: device 0 ($T/s0): frontend connected, driver ready" "$T/daemon.log"
	grep -q 'status:   console 0 (port 0): open in the guest, 1 client, out 16 bytes, in 5, skipped 0, never read 0' "$T/daemon.log"
	touch "$T/go"
	wait "$f" || { cat "$T/fe.err"; return 1; }
	# and once the frontend is gone
	exec 5>&-
	# (or "went away": the notices of the frontend leaving may be on
	# their way to it when it closes)
	wait_log "$T/daemon.log" 'client .* (disconnected|went away)' || { show_logs; return 1; }
	kill -USR1 "$DAEMON_PID"
	wait_log "$T/daemon.log" "status: device 0 \($T/s0\): no frontend" 10
	wait_log "$T/daemon.log" 'status:   console 0 \(port 0\): closed in the guest, 0 clients, out 16 bytes' 10
}

@test "one flush sends a reader at most 64 KiB (SESS_PASS_MAX), however much it has pending and the fd takes, and leaves it live for the next pass" {
	run "$TOP/tests/sessunit" pass-bound
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "a reader overtaken during its replay gets the whole replay, then the skip notice, then the output after the gap" {
	run "$TOP/tests/sessunit" replay-notice
	echo "$output"
	[ "$status" -eq 0 ]
}

# The prefix --log-timestamps puts before each log line.
STAMP='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z '

@test "--log-timestamps: each line of the log starts with its UTC time, ISO 8601 with milliseconds" {
	local before after t
	before=$(date -u +%s)
	start_net --log-file="$T/log" --log-timestamps
	fe "$T/s0" init handshake write 'one\ntwo\n' write 'three\n'
	wait_until 5 grep -q 'three' "$T/log0"
	after=$(date -u +%s)
	[ "$(wc -l <"$T/log0")" -eq 3 ]
	[ "$(grep -cE "^${STAMP}(one|two|three)\$" "$T/log0")" -eq 3 ] || { cat -A "$T/log0"; return 1; }
	t=$(date -u -d "$(head -c 23 "$T/log0")" +%s)
	[ "$t" -ge "$before" ] && [ "$t" -le "$after" ]
}

@test "--log-timestamps: a line written in two parts gets one prefix" {
	start_net --log-file="$T/log" --log-timestamps
	fe "$T/s0" init handshake write 'par' write 'tial\n' write 'next\n'
	wait_until 5 grep -q 'next' "$T/log0"
	grep -qE "^${STAMP}partial\$" "$T/log0" || { cat -A "$T/log0"; return 1; }
	[ "$(wc -l <"$T/log0")" -eq 2 ]
}

@test "--log-timestamps: CR LF keeps its CR with the prefix after the LF; a lone CR is no new line" {
	start_net --log-file="$T/log" --log-timestamps
	fe "$T/s0" init handshake write 'boot\r\n10%\r50%\r100%\r\n' write 'done\n'
	wait_until 5 grep -q 'done' "$T/log0"
	[ "$(wc -l <"$T/log0")" -eq 3 ]
	cmp <(sed -E "s/^${STAMP}/T /" "$T/log0") <(printf 'T boot\r\nT 10%%\r50%%\r100%%\r\nT done\n') ||
		{ cat -A "$T/log0"; return 1; }
}

@test "--log-timestamps without --log-file is a usage error (status 2)" {
	run "$DAEMON" --socket-path="$T/s" --log-timestamps
	[ "$status" -eq 2 ]
	[[ "$output" == *"--log-timestamps needs --log-file"* ]]
}
