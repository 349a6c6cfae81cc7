#!/usr/bin/env bats
# --trace: the daemon's account on stderr of what the frontend and the
# guest say (trace.h).  The harness (tests/frontend) and a user-mode Linux
# boot each must show the vhost-user handshake and the MULTIPORT control
# handshake in order; level 2 adds ring events; without --trace none of
# it appears.

load helpers
load uml

setup() { common_setup; }

# The control queue bringing port 0 up (the driver's DEVICE_READY, the
# device's PORT_ADD, ...; virtio spec 5.3.6.2), as --trace=1 shows it: the
# same in order whoever the driver is (the harness or Linux).
PORT0_UP=(
	'ctrl <- DEVICE_READY id none value 1'
	'ctrl -> PORT_ADD id 0 value 1'
	'ctrl <- PORT_READY id 0 value 1'
	'ctrl -> CONSOLE_PORT id 0 value 1'
	'ctrl -> PORT_OPEN id 0 value 1'
	'ctrl <- PORT_OPEN id 0 value 1'
)

teardown() {
	local rc=0
	uml_stop || rc=1
	common_teardown || rc=1
	return $rc
}

# in_order FILE REGEX...: each REGEX matches a line of FILE, each on a
# later line than the one before; else say which one was missing.
in_order() {
	local file=$1 from=1 n re
	shift
	for re in "$@"; do
		n=$(tail -n +"$from" "$file" | grep -nE -m1 -- "$re" | cut -d: -f1)
		if [ -z "$n" ]; then
			echo "no line matching '$re' after line $((from - 1)) of $file:"
			cat "$file"
			return 1
		fi
		from=$((from + n))
	done
}

# start_traced ARGS...: one device on $T/s0 (console on TCP $PORT), traced.
start_traced() {
	PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network --tcp-port="$PORT" "$@"
}

@test "--trace shows the harness's vhost-user handshake, its replies and the control messages in order" {
	start_traced --trace
	fe "$T/s0" init handshake
	in_order "$T/daemon.log" \
		'trace: device 0: <- GET_FEATURES$' \
		'trace: device 0: -> reply GET_FEATURES 0x[0-9a-f]+ \(.*CONSOLE_F_MULTIPORT.*VERSION_1\)' \
		'<- GET_PROTOCOL_FEATURES' \
		'-> reply GET_PROTOCOL_FEATURES 0x[0-9a-f]+ \(PROTOCOL_F_MQ .*PROTOCOL_F_REPLY_ACK' \
		'<- SET_FEATURES 0x[0-9a-f]+ \(.*VERSION_1\) \[need_reply\]' \
		'-> ack SET_FEATURES 0 \(ok\)' \
		'<- SET_MEM_TABLE 2 regions; 0: gpa 0x100000 size 0x400000 .*\[2 fds\]' \
		'<- SET_VRING_NUM q0 num 256' \
		'<- SET_VRING_ADDR q0 flags 0 desc 0x[0-9a-f]+ avail 0x[0-9a-f]+ used 0x' \
		'<- SET_VRING_KICK q0 .*\[1 fd\]' \
		'<- SET_VRING_CALL q3 .*\[1 fd\]' \
		'<- SET_VRING_ENABLE q3 enable' \
		"${PORT0_UP[@]}"
	# Level 1 is messages only.
	refute grep -q 'ring q' "$T/daemon.log"
}

@test "--trace=2 also shows ring events: kicks, chains taken and used with their lengths, notifications" {
	start_traced --trace=2
	fe "$T/s0" init handshake write 'hello\n'
	in_order "$T/daemon.log" \
		'ctrl <- PORT_OPEN id 0 value 1' \
		'trace: device 0: ring q1 kick' \
		'ring q1 take head [0-9]+: out 6 bytes \(1 seg\), in 0 bytes' \
		'ring q1 used head [0-9]+ len 0' \
		'ring q1 notify'
}

@test "without --trace nothing is traced; --trace=3 is a usage error" {
	start_traced
	fe "$T/s0" init handshake write 'hello\n'
	refute grep -q 'trace:' "$T/daemon.log"
	run "$DAEMON" --socket-path="$T/x" --trace=3
	[ "$status" -eq 2 ]
	[[ "$output" == *"--trace: '3' is not a number from 1 to 2"* ]]
}

@test "--trace: PORT_NAME shows the name, escaped" {
	start_traced --trace --port='da\ta'
	# 0 = DEVICE_READY, 3 = PORT_READY; then PORT_ADD (1) for both ports,
	# and port 1's PORT_NAME and PORT_OPEN 0 (no client yet), which the
	# harness reads while it holds the rings.
	"$FRONTEND" "$T/s0" init --ports=2 ctrl-send 0xffffffff 0 1 \
		ctrl-send 1 3 1 ctrl-give 16 ctrl-expect 0 1 1  1 1 1 \
		hold "$T/go" 2>"$T/fe.err" 3>&- &
	BG_PIDS+=("$!")
	wait_log "$T/daemon.log" 'ctrl -> PORT_OPEN id 1'
	touch "$T/go"
	in_order "$T/daemon.log" \
		'ctrl -> PORT_ADD id 1 value 1' \
		'ctrl -> PORT_NAME id 1 value 1 "da\\x5cta"$' \
		'ctrl -> PORT_OPEN id 1 value 0'
}

@test "uml: --trace shows a Linux guest's boot: GET_FEATURES ... SET_MEM_TABLE ... SET_VRING_KICK, then DEVICE_READY, PORT_ADD, PORT_READY, CONSOLE_PORT, PORT_OPEN" {
	command -v "$UML_BIN" >/dev/null || skip "no $UML_BIN (package user-mode-linux)"
	uml_rootfs "$T/root"
	start_traced --trace
	uml_boot "$T/s0"
	uml_wait_ready 60
	wait_log "$T/daemon.log" 'ctrl <- PORT_OPEN id 0 value 1' 20
	in_order "$T/daemon.log" \
		'frontend connected' \
		'<- GET_FEATURES' \
		'-> reply GET_FEATURES 0x[0-9a-f]+ \(.*VERSION_1\)' \
		'<- SET_FEATURES 0x[0-9a-f]+ \(.*CONSOLE_F_MULTIPORT.*VERSION_1' \
		'<- SET_MEM_TABLE 1 region; 0: gpa 0x[0-9a-f]+ size 0x[0-9a-f]+ .*\[1 fd\]' \
		'<- SET_VRING_NUM q[0-3] num [0-9]+' \
		'<- SET_VRING_ADDR q[0-3] ' \
		'<- SET_VRING_KICK q[0-3] .*\[1 fd\]' \
		"${PORT0_UP[@]}"
}
