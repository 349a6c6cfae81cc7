#!/usr/bin/env bats
# The command line: help, version, every refused combination, and the
# start-up failures.  Each error is one line on stderr and a documented
# exit status: 2 for usage, 1 for a runtime failure.

bats_require_minimum_version 1.5.0
load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# usage_fails MESSAGE ARGS...: exit 2 with MESSAGE on stderr, nothing else.
usage_fails() {
	local msg=$1; shift
	# bounded: a command line wrongly accepted starts a daemon that would stay
	run --separate-stderr timeout 10 "$DAEMON" "$@"
	[ "$status" -eq 2 ] || { echo "status $status: $stderr"; return 1; }
	[[ "$stderr" == *"$msg"* ]] || { echo "stderr: $stderr"; return 1; }
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	[ -z "$output" ]
}

@test "--help prints usage with every option and exits 0" {
	run "$DAEMON" --help
	[ "$status" -eq 0 ]
	for o in --socket-path --socket-count --backend --tcp-port --tcp-address \
	         --port --console-name --history --log-file --size --resize-order \
	         --max-queue-size --escape --help --version; do
		[[ "$output" == *"$o"* ]] || { echo "missing $o"; return 1; }
	done
}

@test "--help says what SIGHUP does with the nested backend, and calls the escape key by its name, not ESC" {
	run "$DAEMON" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"SIGHUP reopens the log files (with
the nested backend it stops the daemon"* ]]
	[[ "$output" != *ESC* ]]
	[[ "$output" == *"the key then q quits"* ]]
}

@test "--help states the defaults: 80x24, 64K of history, host names for addresses" {
	run "$DAEMON" --help
	[[ "$output" == *"(default
                             80x24)"* ]]
	[[ "$output" == *"(default 64K; 0 turns it off)"* ]]
	[[ "$output" == *"--tcp-address=ADDR     address or host name"* ]]
	[[ "$output" == *"--web-address=ADDR     web: address or host name"* ]]
}

@test "--version prints the name and version" {
	run "$DAEMON" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^vhost-device-console\ [0-9]+\.[0-9]+ ]]
}

@test "no --socket-path is a usage error" {
	usage_fails "--socket-path (or --fd) is required"
}

@test "an unknown option is a usage error" {
	usage_fails "unknown option --frobnicate" -s "$T/s" --frobnicate
}

@test "an option without its value is a usage error" {
	usage_fails "needs a value" --socket-path
}

@test "a value given to an option that takes none is a usage error that names the option" {
	usage_fails "--telnet takes no value" -s "$T/s" -b network --telnet=1
	usage_fails "--help takes no value" --help=x
	usage_fails "--version takes no value" --vers=2
}

@test "an ambiguous abbreviation is a usage error that names the candidates" {
	usage_fails "ambiguous option --web: --web-port, --web-address, --web-assets, --web-token" -s "$T/s" --web=8080
	usage_fails "ambiguous option --so" --so "$T/s"
}

@test "an unknown short option is a usage error that names it" {
	usage_fails "unknown option -Z" -s "$T/s" -Z
	usage_fails "unknown option -Z" -s "$T/s" -Zh
}

@test "an abbreviation names the whole option in its errors" {
	usage_fails "--tcp-port: 'x' is not a number from 1 to 65535" -s "$T/s" -b network --tcp-p=x
	usage_fails "option --socket-count needs a value" -s "$T/s" --socket-c
}

@test "a stray argument is a usage error" {
	usage_fails "unexpected argument 'extra'" -s "$T/s" extra
}

@test "--socket-count out of range is a usage error" {
	usage_fails "--socket-count: '0' is not a number from 1 to 256" -s "$T/s" -c 0 -b network
	usage_fails "--socket-count: '257'" -s "$T/s" -c 257 -b network
	usage_fails "--socket-count: 'two'" -s "$T/s" -c two -b network
}

@test "an unknown backend is a usage error" {
	usage_fails "--backend: 'serial' is not nested, network, unix, pty or web" -s "$T/s" -b serial
}

@test "nested with more than one device is a usage error" {
	usage_fails "the nested backend serves one device" -s "$T/s" -c 2
}

@test "--tcp-port without the network backend is a usage error" {
	usage_fails "need --backend=network" -s "$T/s" -p 2000
}

@test "--tcp-port out of range is a usage error" {
	usage_fails "--tcp-port: '0'" -s "$T/s" -b network -p 0
	usage_fails "--tcp-port: '65536'" -s "$T/s" -b network -p 65536
}

@test "ports running past 65535 are a usage error" {
	usage_fails "goes past port 65535" -s "$T/s" -b network -p 65535 -c 2
}

@test "--max-queue-size must be a power of two up to 32768" {
	usage_fails "--max-queue-size: 1000 is not a power of two" -s "$T/s" -q 1000
	usage_fails "--max-queue-size: '65536'" -s "$T/s" -q 65536
}

@test "a bad --escape is a usage error" {
	usage_fails "--escape: 'ab'" -s "$T/s" -e ab
}

@test "a backend listed twice is a usage error" {
	usage_fails "--backend: network is listed twice" -s "$T/s" -b network,network
	usage_fails "--backend: 'serial' is not nested, network, unix, pty or web" -s "$T/s" -b network,serial
}

@test "a port name with a slash, a space or too many bytes is a usage error" {
	usage_fails "--port: 'a/b': no spaces, slashes or control characters" -s "$T/s" -b network --port=a/b
	usage_fails "--port: 'a b': no spaces" -s "$T/s" -b network --port='a b'
	usage_fails "--console-name: a name has 1 to 127 bytes" -s "$T/s" -b network \
		--console-name="$(printf 'x%.0s' $(seq 128))"
}

@test "generic ports with the nested backend alone are a usage error that names every other way in" {
	usage_fails "--port: generic ports need --backend=network, unix, pty or web" -s "$T/s" --port=data
}

@test "more than 31 ports per device is a usage error" {
	local args=() i
	for i in $(seq 31); do args+=(--port="p$i"); done
	usage_fails "--port: at most 31 ports per device" -s "$T/s" -b network "${args[@]}"
}

@test "a --size that is not COLSxROWS is a usage error" {
	usage_fails "--size: '80' is not COLSxROWS" -s "$T/s" --size=80
	usage_fails "--size: '0x24' is not COLSxROWS (1-65535 each)" -s "$T/s" --size=0x24
}

@test "--history over 64 MiB is a usage error" {
	usage_fails "--history: '67108865' is not a size from 0 to 64M" -s "$T/s" --history=67108865
	usage_fails "--history: '65M' is not a size from 0 to 64M" -s "$T/s" --history=65M
	usage_fails "--history: '64KB' is not a size" -s "$T/s" --history=64KB
	usage_fails "--history: 'K' is not a size" -s "$T/s" --history=K
}

@test "--history takes K, M and G as the docs write sizes" {
	start_daemon -s "$T/s" -b network -p "$(free_port)" --history=64M
	stop_daemon
	PORT=$(free_port)
	start_daemon -s "$T/s" -b network -p "$PORT" --history=64K
	# 64 KiB of history: after 1000 lines of 100 bytes and END, a client
	# gets the last 65536 bytes from their first line start (the replay
	# starts at a line): 655 whole lines, then END
	local x99 lines=0 line=
	x99=$(printf 'x%.0s' $(seq 99))
	fe "$T/s0" init handshake write "$(for _ in $(seq 1000); do printf '%s\\n' "$x99"; done)END\n"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	while IFS= read -r -t 10 line <&5 && [ "$line" != END ]; do
		[ "$line" = "$x99" ] || { echo "got ${line:0:80}"; return 1; }
		lines=$((lines + 1))
	done
	[ "$line" = END ] && [ "$lines" -eq 655 ] || { echo "$lines lines, then '$line'"; return 1; }
}

@test "--resize-order is cols-rows or rows-cols" {
	usage_fails "--resize-order: 'cols' is not cols-rows or rows-cols" -s "$T/s" --resize-order=cols
}

# start_six: 2 devices of 3 ports (the console, "data", one unnamed), so
# console k = d * 3 + p; TCP ports from $PORT, log files $T/log0..5.
start_six() {
	PORT=$(free_port 6)
	start_daemon -s "$T/vc.sock" -c 2 -b network -p "$PORT" --port=data --port=- \
		--log-file="$T/log"
}

@test "each device with --port has its console and one port per --port" {
	start_six
	local d
	for d in 0 1; do
		grep -q "device $d: vhost-user socket $T/vc.sock$d, 3 ports" "$T/daemon.log"
	done
}

@test "console k = d * P + p listens on TCP port --tcp-port + k" {
	start_six
	local d p k
	for d in 0 1; do
		for p in 0 1 2; do
			k=$((d * 3 + p))
			grep -q "console $k: device $d port $p.*: tcp 127.0.0.1:$((PORT + k));" \
				"$T/daemon.log"
			(exec 9<>/dev/tcp/127.0.0.1/$((PORT + k)))
		done
	done
}

@test "console k = d * P + p logs to --log-file with k appended" {
	start_six
	local k
	for k in 0 1 2 3 4 5; do
		grep -q "console $k: .*; log $T/log$k" "$T/daemon.log"
		test -f "$T/log$k"
	done
}

@test "a named port's console line gives its name" {
	start_six
	local d
	for d in 0 1; do
		grep -q "console $((d * 3 + 1)): device $d port 1 \"data\": " "$T/daemon.log"
	done
}

@test "a socket path that cannot be bound fails with status 1" {
	run --separate-stderr "$DAEMON" -s "$T/no/such/dir/s" -b network -p "$(free_port)"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cannot listen on $T/no/such/dir/s0"* ]]
}

@test "a socket path, unix path, log file or pty link that is too long is a usage error" {
	local long=$T/$(printf '%0200d' 0)
	usage_fails "--socket-path: ${long}0 is over 107 bytes" -s "$long" -b network
	usage_fails "--unix-path: ${long}0 is over 107 bytes" -s "$T/s" -b unix --unix-path="$long"
	usage_fails "--log-file: " -s "$T/s" -b network --log-file="$T/$(printf '%05000d' 0)"
	usage_fails "--pty-link: ${long}0 is over 127 bytes" -s "$T/s" -b pty --pty-link="$long"
	# the last device's number counts: s + 9 fits, s + 10 does not
	local edge=$T/$(printf '%0*d' $((106 - ${#T} - 1)) 0)
	[ "${#edge}" -eq 106 ]
	usage_fails "--socket-path: ${edge}10 is over 107 bytes" -s "$edge" -b network -c 11
}

@test "a regular file at the socket path is refused, not replaced" {
	echo keep > "$T/s0"
	run --separate-stderr "$DAEMON" -s "$T/s" -b network -p "$(free_port)"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$T/s0 exists and is not a socket"* ]]
	[ "$(cat "$T/s0")" = keep ]
}

@test "a stale socket file is replaced" {
	# A socket file nobody listens on, as a killed daemon leaves behind.
	socat UNIX-LISTEN:"$T/s0" /dev/null &
	local pid=$!
	wait_until 5 test -S "$T/s0"
	kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
	test -S "$T/s0"
	start_daemon -s "$T/s" -b network -p "$(free_port)"
	stop_daemon; [ "$DAEMON_RC" -eq 0 ]
}

@test "a socket another daemon listens on is refused" {
	local port; port=$(free_port 2)
	start_daemon -s "$T/s" -b network -p "$port"
	run --separate-stderr "$DAEMON" -s "$T/s" -b network -p $((port + 1))
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$T/s0: another process is listening there"* ]]
	test -S "$T/s0"   # the first daemon's socket is untouched
}

@test "a TCP port in use fails with status 1 and leaves no socket behind" {
	local port; port=$(free_port)
	# One lasting listener (fork: a probe does not end it).  A first
	# listener that a probe ended could still hold the port when a second
	# one binds: the second failed, the daemon got the port and never
	# exited.  The timeout bounds the daemon if the port is free after all.
	socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork /dev/null 3>&- &
	BG_PIDS+=($!)
	wait_until 5 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
	run --separate-stderr timeout 10 "$DAEMON" -s "$T/s" -b network -p "$port"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cannot listen on tcp 127.0.0.1:$port"* ]]
	[ ! -e "$T/s0" ]
}

@test "every device gets its socket and port, then one ready line" {
	local port; port=$(free_port 3)
	start_daemon -s "$T/vc.sock" -c 3 -b network -p "$port"
	for i in 0 1 2; do
		test -S "$T/vc.sock$i"
		grep -q "device $i: vhost-user socket $T/vc.sock$i, 1 port" "$T/daemon.log"
		grep -q "console $i: device $i port 0: tcp 127.0.0.1:$((port + i))" "$T/daemon.log"
		(exec 9<>/dev/tcp/127.0.0.1/$((port + i)))
	done
	# One ready line, after the three device and three console lines.
	[ "$(grep -c ready "$T/daemon.log")" -eq 1 ]
	[ "$(sed -n 7p "$T/daemon.log")" = "vhost-device-console: ready: 3 devices listening" ]
}

@test "SIGTERM exits 0 at once" {
	# stop_daemon allows 5 s: "at once" is well within that
	start_daemon -s "$T/s" -c 2 -b network -p "$(free_port 2)"
	stop_daemon; [ "$DAEMON_RC" -eq 0 ]
}

@test "SIGTERM removes every device's socket" {
	start_daemon -s "$T/s" -c 2 -b network -p "$(free_port 2)"
	stop_daemon
	[ ! -e "$T/s0" ] && [ ! -e "$T/s1" ]
}

@test "SIGINT exits 0" {
	start_daemon -s "$T/s" -b network -p "$(free_port)"
	kill -INT "$DAEMON_PID"
	local rc=0; wait "$DAEMON_PID" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "SIGINT removes the socket" {
	start_daemon -s "$T/s" -b network -p "$(free_port)"
	kill -INT "$DAEMON_PID"
	wait "$DAEMON_PID" || true
	[ ! -e "$T/s0" ]
}

@test "SIGHUP does not stop the network backend" {
	start_daemon -s "$T/s" -b network -p "$(free_port)"
	kill -HUP "$DAEMON_PID"
	# Still serving: a frontend connection is accepted and logged.
	socat -u /dev/null UNIX-CONNECT:"$T/s0"
	wait_log "$T/daemon.log" 'frontend disconnected'
	kill -0 "$DAEMON_PID"
	stop_daemon; [ "$DAEMON_RC" -eq 0 ]
}

@test "a non-loopback --tcp-address warns that the console is exposed" {
	start_daemon -s "$T/s" -b network --tcp-address 0.0.0.0 -p "$(free_port)"
	grep -q "warning: consoles listen on 0.0.0.0: anyone who can reach it" "$T/daemon.log"
}

@test "a --tcp-address or --web-address host name is resolved" {
	local port; port=$(free_port)
	start_daemon -s "$T/s" -b network --tcp-address localhost -p "$port"
	grep -q "console 0: device 0 port 0: tcp 127.0.0.1:$port" "$T/daemon.log" ||
		grep -q "console 0: device 0 port 0: tcp \[::1\]:$port" "$T/daemon.log"
	refute grep -q warning "$T/daemon.log"
	stop_daemon
	port=$(free_port)
	start_daemon -s "$T/s" -b web --web-address localhost --web-port "$port"
	grep -qE "console 0: device 0 port 0: .*(127.0.0.1|\[::1\]):$port" "$T/daemon.log"
}

@test "a --tcp-address or --web-address that does not resolve is a usage error" {
	usage_fails "--tcp-address: cannot resolve 'nowhere.invalid'" -s "$T/s" -b network \
		--tcp-address nowhere.invalid
	usage_fails "--web-address: cannot resolve 'nowhere.invalid'" -s "$T/s" -b web \
		--web-address nowhere.invalid
	usage_fails "--tcp-address: empty address" -s "$T/s" -b network --tcp-address ''
}

@test "vhost-user sockets are 0600 unless --socket-mode and --socket-group say otherwise" {
	start_daemon -s "$T/a" -b network -p "$(free_port)"
	[ "$(stat -c %a "$T/a0")" = 600 ]
	stop_daemon
	start_daemon -s "$T/b" -b network -p "$(free_port)" --socket-mode=0660 \
		--socket-group="$(id -gn)"
	[ "$(stat -c %a "$T/b0")" = 660 ]
	[ "$(stat -c %g "$T/b0")" = "$(id -g)" ]
}

@test "a bad --socket-mode or --socket-group is a usage error" {
	usage_fails "--socket-mode: '0644x' is not an octal mode from 0600 to 0777" -s "$T/s" --socket-mode=0644x
	usage_fails "--socket-mode: '0400' is not an octal mode" -s "$T/s" --socket-mode=0400
	usage_fails "--socket-group: no group 'no-such-group'" -s "$T/s" --socket-group=no-such-group
}

@test "a --socket-group or --unix-group that is not one of ours is a usage error" {
	local daemon=$DAEMON gid=54321 as=()
	if [ "$(id -u)" -eq 0 ]; then
		# root may give its sockets any group: run as nobody, no groups
		command -v setpriv >/dev/null || skip "no setpriv (util-linux) to drop root"
		local DAEMON=setpriv
		as=(--reuid=65534 --regid=65534 --clear-groups "$daemon")
	fi
	while id -G | tr ' ' '\n' | grep -qx "$gid"; do gid=$((gid + 1)); done
	usage_fails "--socket-group: $gid is not one of our groups" "${as[@]}" -s "$T/s" \
		-b network --socket-group=$gid
	usage_fails "--unix-group: $gid is not one of our groups" "${as[@]}" -s "$T/s" \
		-b unix --unix-path="$T/u" --unix-group=$gid
}

@test "a port name given twice is a usage error" {
	usage_fails "--port: the name 'data' is given to ports 1 and 2" -s "$T/s" -b network \
		--port=data --port=data
	usage_fails "--console-name: the name 'con' is given to ports 0 and 1" -s "$T/s" -b network \
		--port=con --console-name=con
	# '-' is no name: any number of them
	start_daemon -s "$T/s" -b network -p "$(free_port 3)" --port=- --port=-
}

@test "without --size the guest is told 80x24" {
	start_one
	fe "$T/s0" init --size handshake --resize=80x24 expect-config-size 80 24
}
