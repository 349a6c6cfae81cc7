#!/usr/bin/env bats
# End to end with a real Linux guest: user-mode Linux 6.1 (virtio_uml is the
# vhost-user frontend) boots against the daemon, loads virtio_console and
# runs a shell on /dev/hvc0; the test drives that shell through the
# daemon's network backend (TCP on 127.0.0.1).
#
# UML_KEEP_LOGS=DIR keeps uml.log, daemon.log and the received console
# data of every test in DIR/<test number>/.

load helpers
load uml

setup() {
	common_setup
	command -v "$UML_BIN" >/dev/null || skip "no $UML_BIN (package user-mode-linux)"
	uml_rootfs "$T/root"
}

teardown() { uml_teardown 'virtio and guest lines' 'virtio|vhost|hvc|UML-|Kernel panic|BUG|WARNING'; }

# boot_guest: daemon with the network backend on a free port, UML against
# it, until the guest's console port is up.  Sets PORT.
boot_guest() {
	PORT=$(free_port)
	start_daemon --socket-path="$T/vc.sock" --backend=network --tcp-port="$PORT"
	uml_boot "$T/vc.sock0"
	uml_wait_ready 60
}

# run_product: have the guest shell compute X*Y for random X, Y and expect
# the product on a line of its own (the tty echoes the command line, which
# holds only the factors).
run_product() {
	local x=$(( RANDOM % 90000 + 10000 )) y=$(( RANDOM % 90000 + 10000 ))
	uml_con_send "echo \$(( $x * $y ))\n"
	uml_con_expect_line "$(( x * y ))" 20
}

# Without any backend: the guest's vhost-user device fails to probe, the
# kernel boots on, and /init runs its shell on UML's tty1 (con1, two host
# fds) instead of hvc0.  This checks the guest side alone (rootfs, /init,
# controlling tty, ^C, poweroff, no process left behind), so a
# failure of the tests below points at the daemon.
@test "uml: self-test without a backend: guest shell on tty1, ^C, poweroff" {
	mkfifo "$T/tty1.in"
	exec 5<>"$T/tty1.in" 6>"$T/tty1.out"
	UML_CON_OUT=$T/tty1.out
	UML_READY_MARKER='UML-MARKER: TTY-READY'
	uml_boot "$T/no-backend.sock" con1=fd:5,fd:6 uml_tty=tty1
	exec 6>&-
	uml_wait_ready 60
	grep -q 'virtio-uml: probe of virtio-uml.0 failed' "$T/uml.log"
	uml_con_send 'echo $((1234*4321))\n'
	uml_con_expect_line 5332114 20
	# The child shell prints start-36 once it is the foreground job
	# (ash hands it the tty before it runs), then becomes sleep: ^C
	# cannot arrive before sleep (or its parent job) owns the terminal.
	uml_con_send "sh -c 'echo start-\$((6*6)); exec sleep 60'; echo slept-\$((6*7))\n"
	uml_con_expect_line start-36 20
	uml_con_send '\003'
	uml_con_send 'echo status-$?\n'
	uml_con_expect_line status-130 20
	uml_con_send 'poweroff\n'
	wait_until 20 eval '! uml_alive'
	grep -q 'reboot: System halted\|reboot: Power down' "$T/uml.log"
	uml_stop
}

@test "uml: a Linux guest runs a shell command through hvc0 and TCP" {
	boot_guest
	# The handshake reached PORT_READY, and the daemon says so once.
	[ "$(grep -c "device 0: the guest's console port is ready" "$T/daemon.log")" -eq 1 ]
	uml_con_open "$PORT"
	run_product
}

@test "uml: the guest survives a TCP client disconnecting; a new client gets the shell" {
	boot_guest
	uml_con_open "$PORT"
	run_product
	uml_con_close
	uml_alive
	uml_con_open "$PORT"
	run_product
	uml_alive
}

@test "uml: ^C over TCP interrupts the foreground job of the guest shell" {
	boot_guest
	uml_con_open "$PORT"
	run_product
	# The line is read in raw mode (line editing) and ^C in the shell
	# itself does not stop a command list: send ^C only once sleep's job
	# owns the terminal.  The child shell prints start-36 when it already
	# is the foreground job (ash hands it the tty first), then execs sleep.
	uml_con_send "sh -c 'echo start-\$((6*6)); exec sleep 60'; echo slept-\$((6*7))\n"
	uml_con_expect_line "start-36" 20
	uml_con_send "\003"
	uml_con_send "echo status-\$?\n"
	uml_con_expect_line "status-130" 20
	run grep -q 'slept-42' "$UML_CON_OUT"
	[ "$status" -ne 0 ]
}

# The RESIZE payload order: the spec's cols, rows (Linux before 6.15 read
# rows, cols; Debian's 6.1 has the fix).  stty size prints "rows cols".
@test "uml: --size reaches the guest: stty size says rows and cols" {
	PORT=$(free_port)
	start_daemon --socket-path="$T/vc.sock" --backend=network --tcp-port="$PORT" \
		--size=100x30
	uml_boot "$T/vc.sock0"
	uml_wait_ready 60
	uml_con_open "$PORT"
	uml_con_send "stty size\n"
	uml_con_expect_line "30 100" 20
}

# slow_read FD BYTES FILE: read BYTES from FD in 32 KiB steps with a pause
# after each: a host side that takes the data slower than the guest writes.
slow_read() {
	local left=$2 n
	: >"$3"
	while [ "$left" -gt 0 ]; do
		n=$(( left < 32768 ? left : 32768 ))
		timeout 20 dd bs="$n" count=1 iflag=fullblock status=none <&"$1" >>"$3" || return 1
		left=$(( left - n ))
		sleep 0.05   # the slowness itself, not a wait for a condition
	done
}

@test "uml: a named generic port: its name in sysfs, 1 MiB each way intact" {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/vc.sock" --backend=network --tcp-port="$PORT" \
		--port=data
	uml_rootfs "$T/root"
	head -c 1048576 /dev/urandom >"$T/h2g.bin"
	head -c 1048576 /dev/urandom >"$T/root/g2h.bin"
	uml_boot "$T/vc.sock0"
	uml_wait_ready 60
	wait_log "$T/daemon.log" "console 1: the guest's port 1 \"data\" is ready"
	uml_con_open "$PORT"
	uml_con_send "cat /sys/class/virtio-ports/vport0p1/name\n"
	uml_con_expect_line "data" 20
	# nobody on the host side: the guest's write waits for a client
	uml_con_send "echo written-early >/dev/vport0p1; echo closed-\$((40+1))\n"
	exec 6<>"/dev/tcp/127.0.0.1/$((PORT + 1))"
	read_line 6 "written-early"
	# input while the guest does not have the port open waits for it (the
	# guest drops what comes for a closed port: type only once echo closed
	# it, and the guest said so before it printed closed-41)
	uml_con_expect_line "closed-41" 20
	printf 'typed-early\n' >&6
	uml_con_send "head -n 1 /dev/vport0p1; echo read-\$((40+2))\n"
	uml_con_expect_line "typed-early" 20
	uml_con_expect_line "read-42" 20   # and head closed the port
	# host -> guest: the guest reads the port into its (host) root
	uml_con_send "head -c 1048576 /dev/vport0p1 >/h2g.got; echo h2g-\$((40+4))\n"
	cat "$T/h2g.bin" >&6
	uml_con_expect_line "h2g-44" 60
	cmp "$T/h2g.bin" "$T/root/h2g.got"
	# guest -> host, read slowly: the guest waits, nothing is dropped
	uml_con_send "cat /g2h.bin >/dev/vport0p1; echo g2h-\$((40+3))\n"
	slow_read 6 1048576 "$T/g2h.got"
	uml_con_expect_line "g2h-43" 60
	cmp "$T/root/g2h.bin" "$T/g2h.got"
	refute grep -q 'skip' "$T/daemon.log"
}
