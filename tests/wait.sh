# tests/wait.sh - the waiting and port helpers shared by the bats suite
# (tests/helpers.bash), tests/soak.sh and the bench scripts that drive a
# guest (bench/guest.sh): sourced, not run, so that the scripts that run
# outside bats wait on conditions exactly as the tests do.
#
# Every wait has a deadline and polls a condition; none sleeps a fixed time.

# wait_until SECONDS CMD...: run CMD every 20 ms until it succeeds.
wait_until() {
	local limit=$1; shift
	local end=$(( $(date +%s%N) + limit * 1000000000 ))
	while ! "$@"; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.02
	done
}

# wait_log FILE REGEX [SECONDS]: until FILE has a line matching REGEX.
wait_log() {
	wait_until "${3:-10}" grep -qE -- "$2" "$1" 2>/dev/null
}

# wait_gone PID [SECONDS]: until PID has exited.
wait_gone() {
	wait_until "${2:-5}" eval "! kill -0 $1 2>/dev/null"
}

# free_port [COUNT]: a TCP port P with P..P+COUNT-1 all free on loopback.
# Picked below the kernel's ephemeral range: a port that clients used there
# may sit in TIME_WAIT, and bind() would fail on it although nobody listens.
free_port() {
	local n=${1:-1} p i busy low=32768
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	[ "$low" -gt 11000 ] || low=32768
	for _ in $(seq 200); do
		p=$(( 10000 + RANDOM % (low - 10000 - n) ))
		busy=0
		for (( i = 0; i < n; i++ )); do
			if (exec 9<>/dev/tcp/127.0.0.1/$((p + i))) 2>/dev/null; then busy=1; break; fi
		done
		[ $busy = 0 ] && { echo "$p"; return 0; }
	done
	return 1
}
