#!/usr/bin/env bats
# Console data both ways between tests/frontend (the guest) and TCP clients
# of the network backend, under the ring variants a real frontend may use.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# fe_bg STEP...: the frontend on device 0 in the background (FE_PID).
fe_bg() {
	"$FRONTEND" "$T/s0" "$@" 2>"$T/fe.err" 3>&- &
	FE_PID=$!
	BG_PIDS+=("$FE_PID")
}

# fe_wait: the background frontend exits 0.
fe_wait() {
	local rc=0
	wait "$FE_PID" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "frontend status $rc: $(cat "$T/fe.err")"
		cat "$T/daemon.log"
		return 1
	fi
}


# both_ways INIT-OPTIONS...: a line each way and 64 KiB each way.
both_ways() {
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe_bg init "$@" handshake write 'READY\n' expect 'hello guest\n' write 'hello host\n' \
		expect-bytes 65536 write-bytes 65536 check-memory
	read_until_line 5 READY
	printf 'hello guest\n' >&5
	read_line 5 "hello host"
	"$FRONTEND" --pattern 65536 >&5
	timeout 10 head -c 65536 <&5 >"$T/got"
	fe_wait
	"$FRONTEND" --pattern 65536 | cmp - "$T/got"
}

@test "guest output reaches a TCP client" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'hello from the guest\n' write 'second line\r\n'
	read_line 5 "hello from the guest"
	read_line 5 $'second line\r'
}

@test "TCP input reaches the guest's receive buffers" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe_bg init handshake write 'READY\n' expect 'typed on the host' write 'GOT IT\n'
	read_line 5 READY
	printf 'typed on the host' >&5
	read_line 5 "GOT IT"
	fe_wait
}

@test "input typed before the guest is ready waits for its buffers" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'early input' >&5
	fe "$T/s0" init handshake expect 'early input' write 'GOT IT\n'
	read_line 5 "GOT IT"
}

@test "1 MiB guest -> host arrives intact" {
	# The console port never holds the guest: a reader the scheduler
	# leaves behind for longer than the ring lasts skips ahead (told).
	# A history as big as the transfer makes that impossible here.
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" \
		--history=2097152
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	# GO reaching the guest proves the daemon accepted this client first
	printf GO >&5
	fe_bg init handshake expect GO write-bytes 1048576 --inflight=16
	read_notices 5 'frontend connected' 'the guest opened the console'
	timeout 30 head -c 1048576 <&5 >"$T/got"
	fe_wait
	[ "$(stat -c %s "$T/got")" -eq 1048576 ]
	[ "$(sha256sum <"$T/got")" = "$("$FRONTEND" --pattern 1048576 | sha256sum)" ]
}

@test "600 buffers made available with one kick are all served" {
	# more than CHAINS_PER_PASS (256): the rest must be taken on the next
	# passes without waiting for another kick
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf GO >&5
	fe_bg init --queue-size=1024 handshake expect GO write-burst 600 'burst line\n' \
		write 'END\n'
	timeout 30 sed '/^END/q' <&5 >"$T/got"
	fe_wait
	[ "$(grep -c '^burst line$' "$T/got")" -eq 600 ]
}

@test "1 MiB host -> guest arrives intact" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe_bg init handshake write 'READY\n' expect-bytes 1048576 30 write 'DONE\n' check-memory
	read_line 5 READY
	"$FRONTEND" --pattern 1048576 >&5
	read_line 5 DONE
	fe_wait
}

@test "8 MiB host -> guest into 256 posted buffers (one readv fills many) arrives intact" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe_bg init handshake --rx-bufs=256 write 'READY\n' read-bytes 8388608 --check 30 \
		write 'DONE\n' check-memory
	read_line 5 READY
	"$FRONTEND" --pattern 8388608 >&5
	read_line 5 DONE
	fe_wait
}

@test "kick and call fds as pipes (user-mode-linux)" {
	start_one
	both_ways --pipes
}

@test "without EVENT_IDX" {
	start_one
	both_ways --no-event-idx
}

@test "pipes, no EVENT_IDX, no INDIRECT" {
	start_one
	both_ways --pipes --no-event-idx --no-indirect
}

@test "output through an indirect table reaches the client" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write-indirect 'through an indirect table\n' \
		check-memory
	read_line 5 "through an indirect table"
}

@test "output through a descriptor chain reaches the client" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write-chain 'through a chain\n' check-memory
	read_line 5 "through a chain"
}

@test "an indirect buffer and a chained one follow each other in order" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write-indirect 'ab' write-chain 'c\n' check-memory
	read_line 5 "abc"
}

@test "chains without INDIRECT negotiated" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init --no-indirect handshake write-chain 'chain, no indirect\n'
	read_line 5 "chain, no indirect"
}

@test "the frontend refuses an indirect write when INDIRECT is not negotiated" {
	start_one
	run "$FRONTEND" "$T/s0" init --no-indirect handshake write-indirect 'x'
	[ "$status" -eq 1 ]
	[[ "$output" == *"not negotiated"* ]]
}

@test "each of several clients can type to the guest" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'from-five ' >&5
	printf 'from-six ' >&6
	printf 'from-seven ' >&7
	fe "$T/s0" init handshake expect-all 3 from-five from-six from-seven
}

@test "several clients all receive the whole output" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	# all three are connected once each has been announced
	wait_until 10 eval '[ "$(grep -c "client .* connected" "$T/daemon.log")" -eq 3 ]'
	fe "$T/s0" init handshake write 'to everyone\n' \
		write-bytes 100000 write '\nend\n'
	local fd
	for fd in 5 6 7; do
		read_line $fd "to everyone"
		timeout 10 head -c 100000 <&$fd >"$T/got$fd"
		"$FRONTEND" --pattern 100000 | cmp - "$T/got$fd"
		read_line $fd ""
		read_line $fd "end"
	done
}

@test "output while nobody is connected goes to the next client" {
	start_one
	fe "$T/s0" init handshake write 'said while nobody listened\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	read_line 5 "said while nobody listened"
}

@test "output kept while nobody is connected is bounded, newest kept" {
	start_one
	fe "$T/s0" init handshake write 'OLDEST\n' write-bytes 1000000 write 'NEWEST\n'
	socat -u "TCP:127.0.0.1:$PORT" "CREATE:$T/got" 3>&- &
	BG_PIDS+=("$!")
	wait_until 10 grep -a -q NEWEST "$T/got"
	local size kept
	size=$(stat -c %s "$T/got")
	kept=$((size - 7))
	# something was dropped, and what stayed is the tail of the stream
	[ "$kept" -lt 1000000 ]
	[ "$kept" -gt 0 ]
	[ "$(tail -c 7 "$T/got")" = NEWEST ]
	# (the replay starts at a line start or a screen reset and leaves out
	# what a terminal would answer, replay.h: the pattern's end is whole)
	cmp <(head -c "$kept" "$T/got" | tail -c 256) \
		<("$FRONTEND" --pattern 1000000 | tail -c 256)
	refute grep -a -q OLDEST "$T/got"
}

# log_count REGEX N: the daemon log has exactly N lines matching REGEX.
log_count() {
	[ "$(grep -cE -- "$1" "$T/daemon.log")" -eq "$2" ]
}

@test "clients that type and leave while the guest takes no input free their slot" {
	start_one
	local i
	# no guest: the input can go nowhere, yet each departure is seen
	for i in $(seq 20); do
		exec 5<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'typed %s' "$i" >&5
		exec 5>&-
		wait_until 5 log_count 'disconnected; [0-9]+ bytes of its input never reached the guest' "$i"
	done
	# 20 > 16 slots: had any stayed taken, this one would be refused
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'served\n'
	read_line 5 "served"
	refute grep -q refusing "$T/daemon.log"
}

@test "memory check after traffic both ways, transmit buffer across the regions" {
	start_one
	both_ways --tx-cross
}

@test "memory check after traffic both ways, receive buffer across the regions" {
	start_one
	both_ways
}

@test "guest reset, handshake again, data both ways" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe_bg init handshake write 'before\n' reset write 'READY\n' expect 'after reset' \
		write 'after\n' reset reset write-bytes 100000 check-memory
	read_line 5 before
	read_line 5 READY
	printf 'after reset' >&5
	read_line 5 after
	read_notices 5 'the guest closed the console' 'the guest opened the console' \
		'the guest closed the console' 'the guest opened the console'
	timeout 10 head -c 100000 <&5 >"$T/got"
	fe_wait
	"$FRONTEND" --pattern 100000 | cmp - "$T/got"
}

@test "queue size 4 starting just below the u16 index wrap" {
	start_one
	both_ways --queue-size=4 --base=65530
}

@test "queue size 1" {
	start_one
	both_ways --queue-size=1 --base=65535
}

@test "QEMU's queue size 1024" {
	start_one
	both_ways --queue-size=1024
}

@test "the maximum queue size 32768" {
	start_one
	both_ways --queue-size=32768 --no-event-idx --base=40000
}

@test "memory given by ADD_MEM_REG, data both ways" {
	start_one
	both_ways --add-mem-reg
}

@test "without PROTOCOL_FEATURES, data both ways" {
	start_one
	both_ways --no-protocol-features
}

@test "a guest reconnecting gets the console back, input included" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'first guest\n'
	read_line 5 "first guest"
	both_ways --pipes
}

# typed_instead STEP...: the guest says READY, then waits with STEP (an
# expect that cannot match) while a client types "typed instead": the
# harness fails, its complaint in $T/fe.err.
typed_instead() {
	local rc=0
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe_bg init handshake write 'READY\n' "$@"
	read_line 5 READY
	printf 'typed instead' >&5
	wait "$FE_PID" || rc=$?
	[ "$rc" -ne 0 ]
}

@test "a failed expect names what was received, not the wanted text twice" {
	typed_instead expect 'never typed' 0.5
	grep -q 'expected "never typed"' "$T/fe.err"
	grep -q 'received (unconsumed, 13 bytes): "typed instead"' "$T/fe.err"
}

@test "a failed expect-all names what was received" {
	typed_instead expect-all 2 typed never 0.5
	grep -q '"never" not received within 0.5 s; received: "typed instead"' "$T/fe.err"
}
