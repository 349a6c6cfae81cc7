#!/usr/bin/env bats
# The vhost-user side of the daemon, driven by tests/frontend (which plays
# QEMU and a Linux guest; see the comment at its top for the steps).  Each
# proto-* step checks exact reply bytes and invalid variants; the others
# check connection handling and that a hostile ring breaks only its device.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# alive: the daemon is still running.
alive() {
	kill -0 "$DAEMON_PID" || { echo "the daemon died"; cat "$T/daemon.log"; return 1; }
}

# proto_step STEP: the harness runs protocol step STEP (tests/fe, whose
# expectations are the assertions) against one fresh device, and the
# daemon outlives it.
proto_step() {
	start_one
	fe "$T/s0" "$1"
	alive
}


@test "GET_FEATURES is exactly 0x170000002; SET_FEATURES refuses bits not offered" { proto_step proto-features; }
@test "GET_PROTOCOL_FEATURES is exactly 0x8229; SET_PROTOCOL_FEATURES refuses unknown bits" { proto_step proto-protocol-features; }
@test "GET_QUEUE_NUM 4, GET_MAX_MEM_SLOTS 32, SET_OWNER acked, one reply per GET" { proto_step proto-misc; }
@test "GET_CONFIG answers whole and partial reads exactly" { proto_step proto-config-read; }
@test "GET_CONFIG of an invalid range gets a header-only reply" { proto_step proto-config-invalid; }
@test "an unknown request fails with need_reply, is ignored without it" { proto_step proto-unknown; }
@test "SET_MEM_TABLE: two regions, a long payload accepted; bad tables refused, fds closed" { proto_step proto-mem-table; }
@test "ADD_MEM_REG and REM_MEM_REG are acked" { proto_step proto-mem-reg-acked; }
@test "ADD_MEM_REG with a missing, extra or short fd, or a short payload, is refused" { proto_step proto-mem-reg-refused; }

@test "memory given by ADD_MEM_REG carries the console" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init --add-mem-reg handshake write 'via add_mem_reg\n' check-memory
	read_line 5 "via add_mem_reg"
}

@test "SET_VRING_NUM takes a power of two up to 32768 on queues 0..3, nothing else" { proto_step proto-vring-num; }
@test "SET_VRING_BASE on a queue past the last is refused" { proto_step proto-vring-base-index; }
@test "SET_VRING_KICK without an fd is refused" { proto_step proto-vring-kick-nofd; }
@test "SET_VRING_KICK on a queue past the last is refused and its fd closed" { proto_step proto-vring-kick-bad-queue; }

@test "SET_VRING_KICK with an fd that is not an eventfd or a pipe is refused" {
	start_one
	fe "$T/s0" proto-vring-kick-endless
	grep -q 'SET_VRING_KICK: queue 0: the fd is not an eventfd or a pipe' "$T/daemon.log"
	alive
}

@test "SET_VRING_CALL on a queue past the last is refused and its fd closed" { proto_step proto-vring-call; }
@test "SET_VRING_ENABLE on a queue past the last is refused" { proto_step proto-vring-enable-index; }
@test "GET_VRING_BASE returns the next avail index" { proto_step proto-vring-base-values; }
@test "GET_VRING_BASE stops the ring" { proto_step proto-vring-base-stop; }
@test "a ring restarted from GET_VRING_BASE's index resumes" { proto_step proto-vring-base; }
@test "with PROTOCOL_FEATURES a ring does nothing until SET_VRING_ENABLE(1)" { proto_step proto-vring-enable; }

@test "without PROTOCOL_FEATURES the rings run once their kick fd is set" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init --no-protocol-features handshake write 'no protocol features\n' check-memory
	read_line 5 "no protocol features"
}

@test "without REPLY_ACK nothing is acked and the console still works" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init --no-reply-ack handshake write 'no reply ack\n'
	read_line 5 "no reply ack"
}

@test "QEMU's start sequence leaves guest memory outside the rings untouched" {
	start_one
	fe "$T/s0" init check-memory
	alive
}

@test "the MULTIPORT handshake leaves guest memory outside its buffers untouched" {
	start_one
	fe "$T/s0" init handshake check-memory
	alive
}

@test "every fixed-size request with a short payload is refused, its fd closed" {
	start_one
	fe "$T/s0" proto-short
	grep -q 'SET_VRING_ADDR: payload of 39 bytes, need 40' "$T/daemon.log"
	grep -q 'SET_FEATURES: payload of 0 bytes, need 8' "$T/daemon.log"
	alive
}

@test "every vring request on a queue the device lacks is refused" {
	start_one
	fe "$T/s0" proto-vring-index
	grep -q 'SET_VRING_BASE: no queue 65536' "$T/daemon.log"
	grep -q 'SET_VRING_CALL: bad argument 0x100000000' "$T/daemon.log"
	alive
}

@test "SET_VRING_ADDR unaligned or outside memory is refused; the ring keeps running" {
	start_one
	fe "$T/s0" proto-vring-addr
	grep -q 'SET_VRING_ADDR: queue 1: misaligned' "$T/daemon.log"
	grep -q 'SET_VRING_ADDR: queue 1: ring addresses are outside guest memory' "$T/daemon.log"
	alive
}

@test "bad memory regions are refused and the memory in use stays" {
	# zero size, gpa/uaddr/offset + size wrapping, past the end of the fd,
	# overlapping, and a 33rd slot; each by SET_MEM_TABLE and ADD_MEM_REG
	start_one
	fe "$T/s0" proto-mem-bounds
	grep -q 'SET_MEM_TABLE: memory region gpa 0x40000000 size 0x0: bad bounds' "$T/daemon.log"
	grep -q 'ADD_MEM_REG: memory region gpa 0x40000000: its fd is shorter' "$T/daemon.log"
	grep -q 'SET_MEM_TABLE: regions 0 and 1 overlap' "$T/daemon.log"
	grep -q 'ADD_MEM_REG: all 32 slots in use' "$T/daemon.log"
	alive
}

@test "rings set up and kicked before the memory table wait for it" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" proto-kick-first write 'memory came late\n' check-memory
	read_line 5 "memory came late"
	refute grep -q broken "$T/daemon.log"
}

# bad_ctrl STEP...: the frontend sends three bad control messages (4 bytes
# long, unknown event 99, PORT_READY for port 5: there is one), then STEP...
bad_ctrl() {
	fe "$T/s0" init handshake ctrl-send --len=4 0 3 1 ctrl-send 0 99 1 \
		ctrl-send 5 3 1 "$@"
}

@test "after bad control messages the console keeps working" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	bad_ctrl write 'still a console\n' check-memory
	read_line 5 "still a console"
}

@test "only the first bad control message is logged" {
	# a guest cannot flood stderr
	start_one
	bad_ctrl
	grep -q 'short control message (4 bytes); ignored' "$T/daemon.log"
	[ "$(grep -c 'ignored' "$T/daemon.log")" -eq 1 ]
}

@test "the bad control messages ignored are counted at exit" {
	start_one
	bad_ctrl
	stop_daemon
	[ "$DAEMON_RC" = 0 ]
	grep -q 'device 0: 3 control messages from the guest were ignored' "$T/daemon.log"
}

@test "kick and call fds made blocking by the frontend never block the daemon" {
	start_two
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	"$FRONTEND" "$T/s0" init handshake clear-nonblock write 'one\n' write-bytes 100000 \
		write 'two\n' expect 'typed' reconnect init --pipes handshake \
		clear-nonblock write 'three\n' 2>"$T/fe.err" 3>&- &
	local f=$!
	BG_PIDS+=("$f")
	read_line 5 one
	timeout 10 head -c 100000 <&5 >/dev/null
	read_line 5 two
	printf typed >&5
	read_line 5 three
	wait "$f" || { cat "$T/fe.err"; return 1; }
	# and the other device never noticed
	fe "$T/s1" init handshake write 'device 1\n'
	read_line 6 "device 1"
}

@test "a payload over 268 bytes drops the connection; a new one works" { proto_step proto-oversize; }
@test "a connection closed mid-header or mid-payload is dropped; a new one works" { proto_step proto-truncated; }
@test "a second frontend on the same socket is closed; the first keeps working" { proto_step proto-second-frontend; }

@test "a second frontend process is refused while the first holds the socket" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	"$FRONTEND" "$T/s0" init handshake write 'first\n' hold "$T/go" write 'first again\n' \
		2>"$T/f0.err" 3>&- &
	local f0=$!
	BG_PIDS+=("$f0")
	read_line 5 "first"
	# The second process keeps being refused until its timeout runs out.
	run "$FRONTEND" --timeout=1 "$T/s0" init
	[ "$status" -eq 1 ] || { echo "second frontend: status $status: $output"; return 1; }
	[[ "$output" == *"keeps closing"* ]] || { echo "second frontend: $output"; return 1; }
	touch "$T/go"
	wait "$f0" || { cat "$T/f0.err"; return 1; }
	read_line 5 "first again"
}

@test "fds attached to requests that take none are closed" { proto_step proto-stray-fds; }

@test "disconnect and reconnect: the new guest gets the console" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'one\n' reconnect init handshake write 'two\n' \
		close reconnect init --pipes --no-event-idx handshake write 'three\n' check-memory
	read_line 5 "one"
	read_line 5 "two"
	read_line 5 "three"
	# and a new process after this one went away
	fe "$T/s0" init handshake write 'four\n'
	read_line 5 "four"
}

@test "a frontend killed in the middle of a transfer: the next one works" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	"$FRONTEND" --timeout=60 "$T/s0" init handshake write-bytes 1000000000 3>&- 2>/dev/null &
	local f0=$!
	BG_PIDS+=("$f0")
	# data is flowing once the client has some of it
	[ "$(timeout 10 head -c 100000 <&5 | wc -c)" -eq 100000 ]
	kill -KILL "$f0"
	wait "$f0" || true
	fe "$T/s0" init handshake write 'survived\n' check-memory
	timeout 10 grep -a -q -m1 survived <&5
	alive
}

@test "guest reset (GET_VRING_BASE, rings restarted) restarts the handshake" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	fe "$T/s0" init handshake write 'before reset\n' reset write 'after reset\n' \
		reset reset write 'after three resets\n' check-memory
	read_line 5 "before reset"
	read_line 5 "after reset"
	read_line 5 "after three resets"
}

# broken_ring STEP...: on device 0 of two, run STEP (a hostile ring); the
# daemon logs "broken", stays up, device 1 keeps working, and a reconnect
# on device 0 clears the state.
broken_ring() {
	start_two
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	"$FRONTEND" "$T/s0" init handshake "$@" hold "$T/go" check-memory 2>"$T/f0.err" 3>&- &
	local f0=$!
	BG_PIDS+=("$f0")
	if ! wait_log "$T/daemon.log" broken; then
		echo "no 'broken' in the daemon log"
		cat "$T/daemon.log" "$T/f0.err"
		return 1
	fi
	alive
	fe "$T/s1" init handshake write 'device 1 still works\n' check-memory
	read_line 6 "device 1 still works"
	# device 0 with its broken ring still answers the frontend
	touch "$T/go"
	wait "$f0" || { echo "device 0 frontend: $(cat "$T/f0.err")"; return 1; }
	fe "$T/s0" init handshake write 'device 0 after reconnect\n' check-memory
	read_line 5 "device 0 after reconnect"
	alive
}

@test "broken ring: avail ring entry >= queue size" {
	broken_ring corrupt-head
}

@test "broken ring: NEXT index >= queue size" {
	broken_ring corrupt-next
}

@test "broken ring: a NEXT cycle" {
	broken_ring desc-loop
}

@test "broken ring: buffer outside guest memory" {
	broken_ring desc-oob
}

@test "broken ring: buffer running past the end of guest memory" {
	broken_ring desc-oob-edge
}

@test "broken ring: buffer address + length wraps around" {
	broken_ring desc-wrap
}

@test "broken ring: avail idx more than the queue size ahead" {
	broken_ring avail-jump
}

@test "broken ring: indirect table length not a multiple of 16" {
	broken_ring indirect-bad-len
}

@test "broken ring: indirect descriptor inside an indirect table" {
	broken_ring indirect-nested
}

@test "broken ring: a zero-length buffer" {
	broken_ring desc-empty
	grep -q 'zero-length buffer' "$T/daemon.log"
}

@test "broken ring: an oversized indirect table is refused before it is walked" {
	broken_ring indirect-huge
	grep -q 'indirect table of 65536 entries (max 32768)' "$T/daemon.log"
}

@test "broken ring: a device-writable buffer on the transmitq" {
	broken_ring desc-wrong-dir
	grep -q 'transmit buffer is device-writable' "$T/daemon.log"
}

@test "broken ring: a device-writable buffer on the control transmitq" {
	broken_ring desc-wrong-dir 3
	grep -q 'control transmit buffer is device-writable' "$T/daemon.log"
}

@test "broken ring: an indirect descriptor that also has NEXT" {
	broken_ring indirect-next
	grep -q 'malformed indirect descriptor' "$T/daemon.log"
}

@test "broken ring: bad chain on the control transmitq" {
	broken_ring corrupt-next 3
}

@test "broken ring: avail jump on the control transmitq" {
	broken_ring avail-jump 3
}

# broken_rx_ring STEP: the hostile STEP on device 0's receiveq, which the
# daemon only looks at when input arrives: typing breaks device 0, and
# device 1 still takes input and answers.
broken_rx_ring() {
	start_two
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	"$FRONTEND" "$T/s0" init handshake --rx-bufs=0 write 'ARMED\n' "$1" 0 \
		hold "$T/go" check-memory 2>"$T/f0.err" 3>&- &
	local f0=$!
	BG_PIDS+=("$f0")
	read_line 5 "ARMED"
	printf 'input for a broken ring' >&5
	wait_log "$T/daemon.log" broken || { cat "$T/daemon.log" "$T/f0.err"; return 1; }
	alive
	"$FRONTEND" "$T/s1" init handshake write 'READY\n' expect 'device 1 input' \
		write 'device 1 got it\n' 2>"$T/f1.err" 3>&- &
	local f1=$!
	BG_PIDS+=("$f1")
	read_line 6 "READY"
	printf 'device 1 input' >&6
	read_line 6 "device 1 got it"
	wait "$f1" || { cat "$T/f1.err"; return 1; }
	touch "$T/go"
	wait "$f0" || { cat "$T/f0.err"; return 1; }
}

@test "broken ring: a receive buffer past the end of memory gets no input" {
	broken_rx_ring desc-oob-edge
	grep -q 'outside guest memory' "$T/daemon.log"
}

@test "broken ring: a device-readable receive buffer gets no input" {
	broken_rx_ring desc-wrong-dir
	grep -q 'receive buffer is device-readable' "$T/daemon.log"
}

@test "RESET_DEVICE clears a broken device" {
	start_one
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	"$FRONTEND" "$T/s0" init handshake corrupt-head hold "$T/go" reset-device handshake \
		write 'reset device\n' check-memory 2>"$T/f0.err" 3>&- &
	local f0=$!
	BG_PIDS+=("$f0")
	wait_log "$T/daemon.log" broken || { cat "$T/daemon.log" "$T/f0.err"; return 1; }
	touch "$T/go"
	read_line 5 "reset device"
	wait "$f0" || { cat "$T/f0.err"; return 1; }
}

# ---- issue 12 ----

# no_refusal: the daemon never refused a frontend as "a second one".
no_refusal() {
	if grep -q refusing "$T/daemon.log"; then
		echo "the daemon refused a frontend:"
		cat "$T/daemon.log"
		return 1
	fi
}

@test "a frontend that left (idle, mid-header, mid-payload, after whole messages) never makes the next one refused" {
	start_one
	fe "$T/s0" proto-reconnect-at-once
	no_refusal
	alive
}

@test "a live frontend holds the socket even with half a message queued: a second one is refused" {
	start_one
	fe "$T/s0" proto-second-live-mid-message
	grep -q 'refusing a second frontend' "$T/daemon.log"
	alive
}

@test "GET_VRING_BASE for a queue the device lacks closes the connection: never silence" {
	start_one
	fe "$T/s0" proto-get-vring-base-bad
	grep -q 'GET_VRING_BASE: no queue 4' "$T/daemon.log"
	alive
}

@test "an unsupported request that expects a reply of its own closes the connection" {
	start_one
	fe "$T/s0" proto-unsupported-reply
	grep -q 'GET_STATUS (40), which expects a reply' "$T/daemon.log"
	alive
}

@test "need_reply on every handled request gets exactly one reply, a refusal exactly one failure ack" { proto_step proto-need-reply-all; }

@test "every fixed-size request with one byte too many is refused (a GET: the connection closed)" {
	start_one
	fe "$T/s0" proto-long
	grep -q 'SET_VRING_NUM: payload of 9 bytes, need 8' "$T/daemon.log"
	grep -q 'GET_FEATURES: payload of 1 bytes, need 0' "$T/daemon.log"
	grep -q 'frontend sent a GET_FEATURES that was refused, and its reply cannot say so' "$T/daemon.log"
	alive
}
