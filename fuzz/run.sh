#!/bin/sh
# fuzz/run.sh SECONDS - make the seeds, then run each fuzz target SECONDS.
#
# Seeds: the real daemon (--backend=network) serves tests/frontend, which
# records each scenario below (VC_RECORD, tests/record.h) while a TCP
# client types the scenario's input.  Each recording is a fuzz_vhu seed;
# fuzz_ring replays them (VC_SNAPSHOT) and snapshots the rings and guest
# memory where guest activity starts: those are the fuzz_ring seeds.
#
# Then each target runs SECONDS (one after the other, one process each),
# adding to its corpus in fuzz/work/corpus_*.  Exit status 1 if a target
# left a crash, leak, timeout or out-of-memory artefact (fuzz/work/
# artefacts/) or a recording failed to replay.  SECONDS=0: seeds only.
# FUZZ_FLAGS adds libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1
# -ignore_timeouts=1" to go on past a finding.  Everything lands in
# fuzz/work/ (not tracked).
set -u
cd "$(dirname "$0")/.." || exit 1
trap '' PIPE    # a client that could not connect must not kill us

SECONDS_EACH=${1:-60}
W=fuzz/work
SOCK=$W/vhost.sock
MAX_LEN=65536
status=0

# ---- the scenarios --------------------------------------------------------

# record NAME INPUT STEP...: one run of tests/frontend, recorded as seed
# NAME, while a TCP client types INPUT (printf %b escapes; '' for none).
scenarios() {
	record both-ways 'hello guest\nmore input\n' \
		init handshake write 'hello host\n' expect 'hello guest\n' \
		write-chain 'a chained write\n' write-indirect 'an indirect write\n' \
		expect 'more input\n' write-bytes 9000 check-memory
	record no-event-idx 'typed\n' \
		init --no-event-idx handshake write 'no event idx\n' expect 'typed\n'
	record no-protocol-features 'typed\n' \
		init --no-protocol-features handshake write 'legacy\n' expect 'typed\n'
	record add-mem-reg 'typed\n' \
		init --add-mem-reg handshake write-indirect 'two regions added\n' \
		expect 'typed\n'
	record pipes-wrap 'x' \
		init --pipes --queue-size=8 --base=65533 handshake \
		write-chain 'around the wrap\n' write-bytes 20000 expect x
	record tx-cross 'y' \
		init --tx-cross --no-indirect --no-reply-ack handshake \
		write 'across the region boundary\n' expect y
	record reset 'after reset\n' \
		init handshake write 'before\n' reset write 'after\n' \
		expect 'after reset\n' reset-device handshake write 'device reset\n'
	record reconnect '' \
		init handshake write 'one\n' reconnect init handshake write 'two\n'
	record burst '' \
		init --queue-size=512 handshake write-burst 300 'more than a pass\n'
	record ctrl-messages '' \
		init handshake ctrl-send --len=4 0 6 1 ctrl-send 5 3 1 ctrl-send 0 9 0 \
		write 'still here\n'
	for step in corrupt-head corrupt-next desc-loop desc-oob desc-oob-edge \
		desc-wrap avail-jump indirect-bad-len indirect-nested indirect-huge \
		desc-empty desc-wrong-dir indirect-next; do
		record "hostile-$step" '' init handshake write 'ok\n' "$step"
	done
	for step in proto-features proto-protocol-features proto-misc \
		proto-config proto-unknown proto-mem-table proto-mem-reg proto-vring \
		proto-vring-base proto-vring-enable proto-oversize proto-truncated \
		proto-second-frontend proto-stray-fds proto-short proto-vring-index \
		proto-vring-addr proto-mem-bounds proto-kick-first; do
		record "$step" '' "$step"
	done
}

# ---- recording ------------------------------------------------------------

failed_recordings=0

record() {
	name=$1 input=$2
	shift 2
	rm -f "$W/seeds_vhu/$name" "$W/client.fifo"
	mkfifo "$W/client.fifo"
	# The client stays connected until the frontend is done: a client that
	# leaves takes its unread input with it.
	socat -u - "TCP:127.0.0.1:$PORT" <"$W/client.fifo" &
	client=$!
	exec 3>"$W/client.fifo"
	printf '%b' "$input" >&3
	if ! VC_RECORD="$W/seeds_vhu/$name" ./tests/frontend --timeout=5 "${SOCK}0" \
		"$@" 2>"$W/frontend.err"; then
		echo "run.sh: recording $name: $(cat "$W/frontend.err")" >&2
		failed_recordings=$((failed_recordings + 1))
	fi
	exec 3>&-
	wait "$client"
}

# A free TCP port is the one the daemon manages to listen on.
daemon_start() {
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$(awk -v s="$$$try" 'BEGIN { srand(s); print 20000 + int(rand() * 40000) }')
		./vhost-device-console --socket-path="$SOCK" --backend=network \
			--tcp-port="$PORT" 2>"$W/daemon.log" &
		daemon=$!
		for _ in $(seq 100); do
			grep -q '^vhost-device-console: ready:' "$W/daemon.log" && return 0
			kill -0 "$daemon" 2>/dev/null || break
			sleep 0.05
		done
		kill "$daemon" 2>/dev/null
		wait "$daemon"
	done
	echo "run.sh: the daemon does not start:" >&2
	cat "$W/daemon.log" >&2
	exit 1
}

make_seeds() {
	rm -rf "$W/seeds_vhu" "$W/seeds_ring"
	mkdir -p "$W/seeds_vhu" "$W/seeds_ring"
	daemon_start
	scenarios
	if ! kill "$daemon"; then
		echo "run.sh: the daemon died while recording:" >&2
		tail -n 20 "$W/daemon.log" >&2
		exit 1
	fi
	wait "$daemon"
	rm -f "$W/client.fifo"
	if [ "$failed_recordings" -gt 0 ]; then
		echo "run.sh: $failed_recordings scenarios failed (their recordings are kept)" >&2
		tail -n 20 "$W/daemon.log" >&2
	fi
	# Replaying a recording must pass every check of the fuzz targets.
	if ! VC_SNAPSHOT="$W/seeds_ring" ./fuzz/fuzz_ring "$W"/seeds_vhu/* \
		>"$W/snapshot.log" 2>&1; then
		echo "run.sh: a recording fails in replay:" >&2
		tail -n 40 "$W/snapshot.log" >&2
		status=1
	fi
	echo "seeds: $(find "$W/seeds_vhu" -type f | wc -l) recordings" \
		"($(cat "$W"/seeds_vhu/* | wc -c) bytes), $(find "$W/seeds_ring" -type f | wc -l)" \
		"ring snapshots ($(cat "$W"/seeds_ring/* | wc -c) bytes)"
}

# ---- fuzzing --------------------------------------------------------------

# fuzz TARGET: run fuzz/fuzz_TARGET for SECONDS_EACH; one summary line.
fuzz() {
	log=$W/fuzz_$1.log
	mkdir -p "$W/corpus_$1"
	# shellcheck disable=SC2086
	./fuzz/fuzz_"$1" -max_total_time="$SECONDS_EACH" -timeout=10 -max_len=$MAX_LEN \
		-print_final_stats=1 -artifact_prefix="$W/artefacts/$1-" ${FUZZ_FLAGS:-} \
		"$W/corpus_$1" "$W/seeds_$1" >"$log" 2>&1
	rc=$?
	# The last status line: "#EXECS ... cov: N ft: N corp: N/SIZE ... exec/s: N"
	# (with -fork: "exec/s N", and "oom/timeout/crash: A/B/C").
	grep -E '^#[0-9]+' "$log" | tail -n 1 | awk -v t="fuzz_$1" -v rc=$rc '{
		for (i = 1; i < NF; i++) { k = $i; sub(/:$/, "", k); v[k] = $(i + 1) }
		sub(/^#/, "", $1); sub(/:$/, "", $1)
		printf "%s: %s execs (%s/s), cov %s, ft %s, corpus %s%s, exit %d\n",
		       t, $1, v["exec/s"], v["cov"], v["ft"], v["corp"],
		       v["oom/timeout/crash"] ? ", oom/timeout/crash " v["oom/timeout/crash"] : "", rc }'
	if [ "$rc" -ne 0 ]; then
		grep -E '^(==[0-9]+==|SUMMARY|fuzz: |artifact_prefix|Test unit written)' "$log" | head -n 20 >&2
		status=1
	fi
}

mkdir -p "$W"
rm -rf "$W/tmp"
mkdir -p "$W/tmp"
export TMPDIR="$PWD/$W/tmp"   # the targets' sockets, libFuzzer's -fork files
make_seeds
if [ "$SECONDS_EACH" -gt 0 ]; then
	rm -rf "$W/artefacts"
	mkdir -p "$W/artefacts"
	fuzz vhu
	fuzz ring
	if [ -n "$(ls "$W/artefacts")" ]; then
		echo "run.sh: artefacts: $(ls "$W/artefacts" | tr '\n' ' ')" >&2
		status=1
	fi
fi
exit $status
