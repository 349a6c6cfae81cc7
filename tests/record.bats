#!/usr/bin/env bats
# --record: console k's session as an asciicast v2 file, played back with
# Debian's asciinema (package asciinema) and read with jq.  The frontend
# harness plays the guest.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# start_rec ARGS...: one device, network backend on $PORT, recording to
# $T/rec0, extra ARGS.
start_rec() {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" \
		--record="$T/rec" "$@"
}

# cast_cat FILE: what `asciinema cat` plays of FILE, to $T/played.  It
# reads keys from /dev/tty: it runs on a pty of its own.
cast_cat() {
	command -v asciinema >/dev/null || skip "no asciinema (package asciinema)"
	timeout 20 "$PTYRUN" -o "$T/cat.tty" -- sh -c 'asciinema cat "$1" >"$2"' sh \
		"$1" "$T/played"
}

# events FILE: its events, one JSON array per line (the header left out).
events() { tail -n +2 "$1"; }

@test "record: asciinema cat plays back the guest's output, a character cut between writes whole, invalid UTF-8 as U+FFFD" {
	start_rec
	fe "$T/s0" init handshake write 'hello \xc3' write '\xa9 w\xffrld\r\n' \
		write '"quoted" back\\slash \x01\x1b[1mbold\x1b[0m\n' write 'last\n'
	wait_until 5 grep -q 'last' "$T/rec0"
	cast_cat "$T/rec0"
	cmp "$T/played" <(printf 'hello \303\251 w\357\277\275rld\r\n"quoted" back\\slash \001\033[1mbold\033[0m\nlast\n') ||
		{ od -c "$T/played"; cat "$T/rec0"; return 1; }
	# every line is JSON: the header, then events
	jq -e . "$T/rec0" >/dev/null
}

@test "record: the header has version 2, the console's size and the start time; event times never go back" {
	local before after
	before=$(date +%s)
	start_rec --size=100x30
	after=$(date +%s)
	fe "$T/s0" init handshake write 'one\n' write-bytes 200000 write 'two\n' write 'three\n'
	wait_until 5 grep -q 'three' "$T/rec0"
	head -n 1 "$T/rec0" | jq -e --argjson b "$before" --argjson a "$after" \
		'.version == 2 and .width == 100 and .height == 30 and
		 .timestamp >= $b and .timestamp <= $a and .env.TERM == "xterm-256color"' ||
		{ head -n 1 "$T/rec0"; return 1; }
	[ "$(events "$T/rec0" | wc -l)" -ge 4 ]
	events "$T/rec0" | jq -se 'map(.[0]) | (.[0] >= 0) and (. == sort)' ||
		{ events "$T/rec0" | jq -c '.[0]'; return 1; }
	events "$T/rec0" | jq -se 'all(.[1] == "o")'
}

@test "record: a new terminal size (telnet NAWS) is an \"r\" event, in time order" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" --telnet \
		--size=80x24 --record="$T/rec"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'before\n'
	wait_until 5 grep -q before "$T/rec0"
	# NAWS: 100 columns, 30 rows
	printf '\377\372\037\000\144\000\036\377\360' >&5
	wait_until 5 grep -q '"r"' "$T/rec0" || { cat "$T/rec0"; show_logs; return 1; }
	fe "$T/s0" init handshake write 'after\n'
	wait_until 5 grep -q after "$T/rec0"
	events "$T/rec0" | jq -se '[.[] | select(.[1] == "r") | .[2]] == ["100x30"]' ||
		{ cat "$T/rec0"; return 1; }
	events "$T/rec0" | jq -se 'map(.[0]) == (map(.[0]) | sort)'
	events "$T/rec0" | jq -se 'map(.[1]) | index("r") < rindex("o")'
}

@test "record: SIGHUP after the file was moved starts a new file with a header" {
	start_rec
	fe "$T/s0" init handshake write 'before rotation\n'
	wait_until 5 grep -q 'before rotation' "$T/rec0"
	mv "$T/rec0" "$T/rec0.1"
	kill -HUP "$DAEMON_PID"
	wait_log "$T/daemon.log" "SIGHUP: recordings started anew"
	fe "$T/s0" init handshake write 'after rotation\n'
	wait_until 5 grep -q 'after rotation' "$T/rec0"
	head -n 1 "$T/rec0" | jq -e '.version == 2 and .width == 80 and .height == 24'
	refute grep -q 'before rotation' "$T/rec0"
	refute grep -q 'after rotation' "$T/rec0.1"
	cast_cat "$T/rec0"
	cmp "$T/played" <(printf 'after rotation\n')
}

@test "record: a recording path that is a FIFO or a symlink stops the start with status 1, at once" {
	mkfifo "$T/fifo0"
	run timeout -k 1 5 "$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" \
		--record="$T/fifo"
	[ "$status" -eq 1 ] || { echo "status $status: $output"; return 1; }
	[[ "$output" == *"recording $T/fifo0: not a regular file (refused)"* ]]
	echo keep >"$T/target"
	ln -s "$T/target" "$T/link0"
	run timeout -k 1 5 "$DAEMON" --socket-path="$T/s" --backend=network --tcp-port="$(free_port)" \
		--record="$T/link"
	[ "$status" -eq 1 ] || { echo "status $status: $output"; return 1; }
	[[ "$output" == *"recording $T/link0: a symbolic link (refused)"* ]]
	[ "$(cat "$T/target")" = keep ]
}


@test "record: a write error is said once and the console goes on" {
	local DAEMON=fsize_daemon WRAP=
	start_rec
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'one\n' write-bytes 8192 write '\ntwo\n' write 'three\n'
	read_line 5 one
	read_until_line 5 three
	[ "$(grep -c 'recording .*/rec0: File too large' "$T/daemon.log")" -eq 1 ] || { show_logs; return 1; }
}

@test "record: SIGHUP with the path turned into a FIFO: one line, nothing recorded until the next SIGHUP, the daemon never blocks" {
	start_rec
	fe "$T/s0" init handshake write 'before\n'
	wait_until 5 grep -q before "$T/rec0"
	rm "$T/rec0"
	mkfifo "$T/rec0"
	kill -HUP "$DAEMON_PID"
	wait_log "$T/daemon.log" "cannot reopen recording $T/rec0: not a regular file \\(refused\\); not recording until the next SIGHUP"
	fe "$T/s0" init handshake write 'while a fifo\n'
	rm "$T/rec0"
	kill -HUP "$DAEMON_PID"
	wait_until 5 test -s "$T/rec0"
	fe "$T/s0" init handshake write 'after\n'
	wait_until 5 grep -q after "$T/rec0"
	refute grep -q 'while a fifo' "$T/rec0"
	[ "$(grep -c 'cannot reopen recording' "$T/daemon.log")" -eq 1 ]
}
