#!/usr/bin/env bats
# Network clients that misbehave or come in crowds: the daemon serves 16,
# turns the rest away politely, never lets a client that stops reading hold
# the guest, and does not spin when it runs out of fds.  tests/clients
# (see the top of tests/clients.c) plays the crowds and the stalled client.

load helpers

CLIENTS=$TOP/tests/clients
REAL_DAEMON=$DAEMON

setup() { common_setup; }
teardown() { common_teardown; }

# daemon_fds: how many fds the daemon has open.
daemon_fds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
fds_are() { [ "$(daemon_fds)" -eq "$1" ]; }

# connected_count: how many clients the daemon has accepted so far.
connected_count() { grep -c 'client .* connected$' "$T/daemon.log"; }

# client_name FILE: the local address tests/clients printed ("connected A").
client_name() {
	wait_log "$1" '^connected ' 10 || { echo "no 'connected' line in $1"; return 1; }
	sed -n 's/^connected //p' "$1"
}

# has_line FILE LINE: FILE has exactly LINE, or say what it has.
has_line() {
	grep -qxF -- "$2" "$1" && return 0
	echo "no line '$2' in $1:"
	cat "$1"
	show_logs
	return 1
}

# cmp_range FILE1 OFF1 FILE2 OFF2 LEN: the byte ranges are equal.
cmp_range() {
	cmp <(tail -c +$(($2 + 1)) "$1" | head -c "$5") \
	    <(tail -c +$(($4 + 1)) "$3" | head -c "$5") ||
		{ echo "$1 at $2 differs from $3 at $4 ($5 bytes)"; return 1; }
}

# byte_at FILE OFF: the byte at OFF, in hex.
byte_at() { od -An -tx1 -j "$2" -N 1 "$1" | tr -d ' \n'; }

# check_gapped FILE STREAM: FILE is STREAM with gaps, each gap replaced by
# "[vhost-device-console: N bytes of output skipped]\r\n", N its size
# (N > 0), on a line of its own: after "\r\n" when the byte before the gap
# was not "\n" (session.h).  Sets NOTICES (how many) and SKIPPED (the sum
# of the N).
check_gapped() {
	local file=$1 stream=$2 size total pos=0 spos=0 off text n len notice
	size=$(stat -c %s "$file")
	total=$(stat -c %s "$stream")
	NOTICES=0 SKIPPED=0
	while IFS=: read -r off text; do
		n=${text//[^0-9]/}
		[ "$n" -gt 0 ] || { echo "notice with N=$n at $off"; return 1; }
		# at a line's start: after the stream's "\n", or after the
		# "\r\n" that ends the stream's unfinished line (no blank line)
		len=$((off - pos))
		if [ "$len" -gt 0 ] && ! { [ "$(byte_at "$file" $((off - 1)))" = 0a ] &&
		     cmp_range "$file" "$pos" "$stream" "$spos" "$len" >/dev/null 2>&1; }; then
			[ "$len" -gt 2 ] && [ "$(byte_at "$file" $((off - 2)))" = 0d ] &&
			[ "$(byte_at "$file" $((off - 1)))" = 0a ] &&
			[ "$(byte_at "$file" $((off - 3)))" != 0a ] ||
				{ echo "the notice at $off is not on a line of its own"; return 1; }
			len=$((len - 2))
			cmp_range "$file" "$pos" "$stream" "$spos" "$len"
		fi
		notice=$(printf '[vhost-device-console: %s bytes of output skipped]\r\n' "$n"; echo .)
		notice=${notice%.}
		cmp <(tail -c +$((off + 1)) "$file" | head -c ${#notice}) <(printf '%s' "$notice") ||
			{ echo "the notice at $off is not '[...]\\r\\n'"; return 1; }
		pos=$((off + ${#notice}))
		spos=$((spos + len + n))
		NOTICES=$((NOTICES + 1))
		SKIPPED=$((SKIPPED + n))
	done < <(grep -a -b -o '\[vhost-device-console: [0-9][0-9]* bytes of output skipped\]' "$file")
	len=$((size - pos))
	[ $((spos + len)) -eq "$total" ] ||
		{ echo "$file: $NOTICES notices; $pos bytes + $SKIPPED skipped + $len do not add up to $total"; return 1; }
	cmp_range "$file" "$pos" "$stream" "$spos" "$len"
}

# limited_daemon ARGS...: the daemon with at most 16 fds (soft and hard: it
# raises its soft limit to the hard one), inherited fds above 2 closed.
# Not under VC_WRAP: a wrapper such as valgrind takes fds of its own.
limited_daemon() {
	ulimit -n 16 || return 1
	exec "$REAL_DAEMON" "$@" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
}

@test "200 clients connecting at once: 16 served, the rest told why and closed" {
	start_one
	local before hold
	before=$(daemon_fds)
	"$CLIENTS" --timeout=30 --hold 200 --served 16 --expect 'to all sixteen\n' --wait "127.0.0.1:$PORT" \
		>"$T/hold.out" 2>"$T/hold.err" 3>&- &
	hold=$!
	BG_PIDS+=("$hold")
	# all 200 connected, 184 got one line and were closed, 16 stay open
	wait_log "$T/hold.out" '^ready ' 20 || { cat "$T/hold.out" "$T/hold.err"; show_logs; return 1; }
	has_line "$T/hold.out" 'ready open=16 refused=184 closed=0'
	has_line "$T/hold.out" \
		'refusal: vhost-device-console: console 0 has 16 clients already; try again later'
	grep -q 'refusing client' "$T/daemon.log"
	# the 16 are served: each gets the guest's output
	fe "$T/s0" init handshake write 'to all sixteen\n'
	wait_log "$T/hold.out" '^served=' 10 || { cat "$T/hold.out" "$T/hold.err"; show_logs; return 1; }
	has_line "$T/hold.out" 'served=16 refused=184 closed=0'
	# refused connections left no fd behind (the frontend's go once it is seen gone)
	wait_until 10 fds_are $((before + 16)) ||
		{ echo "daemon fds: $(daemon_fds), want $((before + 16))"; return 1; }
	kill -USR1 "$hold"
	wait "$hold" || { echo "clients: $(cat "$T/hold.err")"; return 1; }
	wait_until 10 fds_are "$before" ||
		{ echo "daemon fds: $(daemon_fds) after all closed, want $before"; return 1; }
	# and the next client is served
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'after the crowd\n'
	read_until_line 5 "after the crowd"
}

@test "a client that never reads while the guest writes 8 MiB: guest and others go on" {
	start_one
	local stall normal stalled reader
	"$CLIENTS" --timeout=60 --stall --read "$T/stalled" --until '\nEND-OF-OUTPUT\n' \
		"127.0.0.1:$PORT" >"$T/stall.out" 2>"$T/stall.err" 3>&- &
	stall=$!
	BG_PIDS+=("$stall")
	"$CLIENTS" --timeout=60 --read "$T/normal" --until '\nEND-OF-OUTPUT\n' \
		"127.0.0.1:$PORT" >"$T/normal.out" 2>"$T/normal.err" 3>&- &
	normal=$!
	BG_PIDS+=("$normal")
	stalled=$(client_name "$T/stall.out")
	reader=$(client_name "$T/normal.out")
	wait_log "$T/daemon.log" "client $stalled connected"
	wait_log "$T/daemon.log" "client $reader connected"
	# the guest writes 8 MiB and is never held up (each wait in the
	# frontend is bounded by its 10 s timeout)
	fe "$T/s0" init handshake write-bytes 8388608 write '\nEND-OF-OUTPUT\n'
	# what a client gets: the notices of the frontend's arrival first
	{ notices 'frontend connected' 'the guest opened the console'
	  "$FRONTEND" --pattern 8388608; printf '\nEND-OF-OUTPUT\n'; } >"$T/stream"
	# the reading client got every byte, in order, and no skip notice
	wait "$normal" || { echo "reader: $(cat "$T/normal.err")"; show_logs; return 1; }
	cut_after_line END-OF-OUTPUT "$T/normal"
	cmp "$T/stream" "$T/normal"
	if grep -q "client $reader is not reading" "$T/daemon.log"; then
		echo "the reading client skipped output"; show_logs; return 1
	fi
	# the stalled one is said to skip, and is still connected
	grep -q "client $stalled is not reading; it skips" "$T/daemon.log" || { show_logs; return 1; }
	kill -0 "$stall"
	# it starts reading: the start of the output, the notice at the gap,
	# the newest output up to the end
	kill -USR1 "$stall"
	wait "$stall" || { echo "stalled client: $(cat "$T/stall.err")"; show_logs; return 1; }
	cut_after_line END-OF-OUTPUT "$T/stalled"
	check_gapped "$T/stalled" "$T/stream"
	echo "stalled client: $(stat -c %s "$T/stalled") bytes, $NOTICES notice(s), $SKIPPED bytes skipped"
	[ "$NOTICES" -ge 1 ] || { echo "no '[... bytes of output skipped]' notice"; return 1; }
	# the log sums the episode up once the client caught up
	wait_log "$T/daemon.log" "client $stalled caught up; [0-9]+ bytes of output were skipped" ||
		{ show_logs; return 1; }
	[ "$(sed -n "s/.*client $stalled caught up; \([0-9]*\) bytes .*/\1/p" "$T/daemon.log" |
	     awk '{ s += $1 } END { print s }')" -eq "$SKIPPED" ] ||
		{ echo "notices say $SKIPPED bytes skipped; the log:"; show_logs; return 1; }
}

@test "accept pauses on EMFILE instead of spinning, and resumes" {
	local DAEMON=limited_daemon WRAP=
	start_one
	# fds below the limit that the daemon uses (0-2, its listeners): the
	# rest is room for clients, fewer than the 16 it would serve
	local room i fd pending t0 t1 l0 l1 hz
	local -a held=()
	room=$((16 - $(ls "/proc/$DAEMON_PID/fd" | awk '$1 < 16' | wc -l)))
	[ "$room" -ge 2 ] && [ "$room" -lt 16 ] || { echo "room for $room clients"; return 1; }
	# one client at a time, each accepted before the next, until one is not
	# (matched by the daemon's own words, not strerror's: musl says "No file
	# descriptors available" where glibc says "Too many open files")
	for (( i = 0; i <= room; i++ )); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		held+=("$fd")
		wait_until 10 eval '[ "$(connected_count)" -gt '"$i"' ] ||
			grep -q "pausing new connections" "$T/daemon.log"' ||
			{ echo "client $i neither accepted nor refused"; show_logs; return 1; }
		grep -q "pausing new connections" "$T/daemon.log" && break
	done
	[ "$i" -eq "$room" ] || { echo "EMFILE after $i clients, room for $room"; show_logs; return 1; }
	[ "$(connected_count)" -eq "$room" ]
	pending=${held[$room]}
	# Stuck: a connection waits that the daemon cannot accept.  Over a 2 s
	# window it may use at most a fifth of a second of CPU (20 ticks at
	# USER_HZ 100): pausing, it wakes once a second; a loop that selects
	# the listener again at once burns the whole CPU, some 200 ticks.  And
	# it logs about once per pause, not per pass.
	hz=$(getconf CLK_TCK)
	t0=$(awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat")
	l0=$(grep -c "pausing new connections" "$T/daemon.log")
	sleep 2   # the observation window, not a wait for an event
	t1=$(awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat")
	l1=$(grep -c "pausing new connections" "$T/daemon.log")
	echo "CPU ticks over 2 s: $((t1 - t0)) (bound $((hz / 5))); EMFILE log lines: $((l1 - l0))"
	[ $((t1 - t0)) -lt $((hz / 5)) ] || { echo "the daemon spins"; return 1; }
	[ $((l1 - l0)) -le 5 ] || { echo "the daemon floods its log"; return 1; }
	kill -0 "$DAEMON_PID"
	# two clients leave: the waiting one is accepted (after the pause,
	# within a second or so) and served, and so is a new one
	fd=${held[0]}; exec {fd}>&-
	fd=${held[1]}; exec {fd}>&-
	wait_until 5 eval '[ "$(connected_count)" -eq $((room + 1)) ]' ||
		{ echo "the waiting client was not accepted"; show_logs; return 1; }
	! read -t 0 -u "$pending" || { echo "the waiting client was closed or told off"; return 1; }
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	wait_until 5 eval '[ "$(connected_count)" -eq $((room + 2)) ]' ||
		{ echo "a new client was not accepted"; show_logs; return 1; }
	! read -t 0 -u "$fd" || { echo "the new client was closed or told off"; return 1; }
}

# type_and_leave N BYTES: N clients each send BYTES and close.
type_and_leave() {
	local i fd
	for (( i = 0; i < $1; i++ )); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		head -c "$2" /dev/zero >&"$fd"
		exec {fd}>&-
	done
}

@test "clients that fill their input hold and leave while the guest takes no input are seen gone, and free their slots" {
	start_one
	# no frontend: the guest takes no input, each client's 4 KiB hold
	# fills, and each leaves; sixteen of them must not lock the console
	type_and_leave 16 4096
	wait_until 10 eval '[ "$(grep -c "disconnected; 4096 bytes of its input never reached the guest" "$T/daemon.log")" -eq 16 ]' ||
		{ echo "not every client was seen gone"; show_logs; return 1; }
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_until 10 eval '[ "$(connected_count)" -eq 17 ]' || { show_logs; return 1; }
	! grep -q 'refusing client' "$T/daemon.log" || { show_logs; return 1; }
}

# served_now: a new client is taken, not told the console is full (it
# is closed again at once).
served_now() {
	local fd line=
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	IFS= read -r -t 1 line <&"$fd"
	exec {fd}>&-
	[[ "$line" != *"clients already"* ]]
}

@test "clients that type more than their hold and leave while the guest takes no input free their slots for a newcomer" {
	start_one
	# each sends 8 KiB: 4 KiB in its hold, the rest and its EOF wait in
	# the socket; sixteen of them must not lock the console
	type_and_leave 16 8192
	wait_until 10 eval '[ "$(connected_count)" -eq 16 ]' || { show_logs; return 1; }
	wait_until 10 served_now || { echo "the console stayed full"; show_logs; return 1; }
	grep -q 'left with input waiting; 4096 bytes of its input never reached the guest' "$T/daemon.log"
}


@test "read-only network: a viewer gets the history and the output; what it types never reaches the guest, counted and logged" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" \
		--read-only=network
	"$FRONTEND" "$T/s0" init handshake write 'history\n' hold "$T/go" \
		write 'live\n' hold "$T/done" 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_log "$T/daemon.log" "the guest's console port is ready"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/daemon.log" "console 0: client .* connected \\(read-only\\)$"
	read_until_line 5 "history"
	# typed while the guest has receive buffers: a writer's would go in
	printf 'typed by a viewer' >&5
	touch "$T/go"
	read_until_line 5 "live"
	wait_until 10 status_has "viewers typed 17 bytes, discarded" || { show_logs; return 1; }
	status_has ", in 0, " || { show_logs; return 1; }
	exec 5>&-
	wait_log "$T/daemon.log" "console 0: client .* \\(read-only\\) disconnected; 17 bytes of its input discarded$" ||
		{ show_logs; return 1; }
	touch "$T/done"
	wait "$f" || { show_logs; return 1; }
}

@test "read-only: SIGUSR1 status counts writers apart from viewers, and only the writers' input reaches the guest" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network,unix --tcp-port="$PORT" \
		--unix-path="$T/u" --read-only=unix
	"$FRONTEND" "$T/s0" init handshake write 'hello\n' expect 'from-writer' \
		hold "$T/done" 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_log "$T/daemon.log" "the guest's console port is ready"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	mkfifo "$T/v.in"
	socat - "UNIX-CONNECT:$T/u0" <"$T/v.in" >"$T/v.out" 2>"$T/v.err" 3>&- &
	BG_PIDS+=($!)
	exec 7>"$T/v.in"
	wait_until 10 status_has "2 clients, " || { show_logs; return 1; }
	status_has "; 1 writer, 1 viewer; " || { show_logs; return 1; }
	printf 'from-viewer' >&7
	wait_until 10 status_has "viewers typed 11 bytes" || { show_logs; return 1; }
	printf 'from-writer' >&5
	# the guest got the writer's 11 bytes, and only those
	wait_until 10 status_has ", in 11, " || { show_logs; return 1; }
	touch "$T/done"
	wait "$f" || { show_logs; return 1; }
	exec 5>&- 7>&-
}

@test "read-only: --read-only names ways in that are used; --web-view-token needs --web-token and another value" {
	run "$DAEMON" --socket-path="$T/s" --backend=network --read-only=unix
	[ "$status" -eq 2 ]
	[[ "$output" == *"--read-only: unix is not in --backend"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=network --read-only=tty
	[ "$status" -eq 2 ]
	[[ "$output" == *"--read-only: 'tty' is not nested, network, unix, pty or web"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=web --web-view-token=v
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-view-token needs --web-token"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=web --web-token=a --web-view-token=a
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-view-token must differ from --web-token"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=web --web-token=a --web-view-token='a b'
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-view-token: use 1 to 64 letters"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=network --web-view-token=v
	[ "$status" -eq 2 ]
}

@test "read-only pty: the program on the slave sees the output; what it types never reaches the guest, counted and logged" {
	start_daemon --socket-path="$T/s" --backend=pty --pty-link="$T/console" \
		--read-only=pty
	local slave; slave=$(readlink "$T/console0")
	"$FRONTEND" "$T/s0" init handshake write 'hello pty\n' hold "$T/go" \
		write 'again\n' hold "$T/done" 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	exec 5<>"$slave"
	read_until_line 5 "hello pty"
	printf typed >&5
	wait_until 10 status_has "; 0 writers, 1 viewer; viewers typed 5 bytes, discarded" ||
		{ show_logs; return 1; }
	status_has ", in 0, " || { show_logs; return 1; }
	touch "$T/go"
	read_until_line 5 "again"
	exec 5>&-
	wait_log "$T/daemon.log" "console 0: $slave \\(read-only\\) left; 5 bytes of its input discarded$" ||
		{ show_logs; return 1; }
	touch "$T/done"
	wait "$f" || { show_logs; return 1; }
}

@test "read-only nested: the terminal shows the output; what comes on stdin never reaches the guest, counted" {
	printf 'typed on stdin' >"$T/stdin"
	$WRAP "$DAEMON" --socket-path="$T/s" --backend=nested --read-only=nested \
		<"$T/stdin" >"$T/daemon.out" 2>"$T/daemon.log" 3>&- &
	DAEMON_PID=$!
	BG_PIDS+=("$DAEMON_PID")
	wait_log "$T/daemon.log" 'ready: ' 30 || { show_logs; return 1; }
	"$FRONTEND" "$T/s0" init handshake write 'shown on the terminal\n' \
		hold "$T/done" 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_until 10 grep -q "shown on the terminal" "$T/daemon.out" || { show_logs; return 1; }
	wait_until 10 status_has "; 0 writers, 1 viewer; viewers typed 14 bytes, discarded" ||
		{ show_logs; return 1; }
	status_has ", in 0, " || { show_logs; return 1; }
	touch "$T/done"
	wait "$f" || { show_logs; return 1; }
	stop_daemon
	grep -q "console 0: the terminal (read-only) left; 14 bytes of its input discarded" "$T/daemon.log" ||
		{ show_logs; return 1; }
}

@test "read-only telnet: a viewer's window size (NAWS) does not resize the console" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" \
		--telnet --read-only=network --size=80x24
	"$FRONTEND" "$T/s0" init --size handshake --resize=80x24 hold "$T/go" \
		expect-config-size 80 24 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	wait_log "$T/daemon.log" "the guest's console port is ready"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_log "$T/daemon.log" "console 0: client .* connected \\(read-only\\)$"
	# IAC SB NAWS 0 100 0 40 IAC SE: 100x40
	printf '\xff\xfa\x1f\x00\x64\x00\x28\xff\xf0' >&5
	wait_until 10 status_has "viewers typed 9 bytes, discarded" || { show_logs; return 1; }
	touch "$T/go"
	wait "$f" || { show_logs; return 1; }
	exec 5>&-
}
