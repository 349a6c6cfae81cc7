#!/usr/bin/env bash
# make check-qemu: boot the QEMU lab's Debian guest (../shared/qemu-lab,
# QEMU 10.0 with its generic vhost-user-device-pci, made user-creatable)
# against the daemon and run a command on its console over TCP.  The
# device gets the README's options (virtio-id=3,num_vqs=4,config_size=12,
# vq_size=256: QEMU 10.2 and later name it vhost-user-test-device-pci;
# 10.0 makes every ring 1024 entries whatever vq_size says).  Skips,
# saying why, when LAB_DIR does not point at a built lab.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
lab_scripts=${QEMU_LAB:-$top/../shared/qemu-lab}
LAB_DIR=${LAB_DIR:-}
daemon=${VC_DAEMON:-$top/vhost-device-console}

if [ -z "$LAB_DIR" ] || [ ! -x "$LAB_DIR/qemu-build/qemu-system-x86_64" ] ||
   [ ! -x "$lab_scripts/boot.sh" ]; then
	echo "check-qemu: SKIPPED: set LAB_DIR to a lab built by" \
	     "$lab_scripts/setup.sh (LAB_DIR=... setup.sh takes about five minutes)"
	exit 0
fi

T=$(mktemp -d /tmp/vc-qemu.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "check-qemu: FAILED: $*"
	echo "--- daemon log";  tail -n 20 "$T/daemon.log"
	echo "--- guest serial"; tail -n 30 "$T/serial.log"
	exit 1
}
# until SECONDS CMD...: poll CMD every 100 ms until it succeeds.
until_ok() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}

port=$(( 20000 + RANDOM % 40000 ))
"$daemon" --socket-path="$T/vc.sock" --backend=network --tcp-port=$port \
	</dev/null 2>"$T/daemon.log" &
pids+=($!)
until_ok 10 grep -q ready "$T/daemon.log" || fail "daemon did not start"

VQ_SIZE=${VQ_SIZE:-256} "$lab_scripts/boot.sh" vhost "$T/vc.sock0" "$T/serial.log" shell \
	</dev/null >"$T/qemu.log" 2>&1 &
pids+=($!)
echo "check-qemu: booting the lab guest under TCG (up to 3 minutes)"
until_ok 180 grep -q 'LAB-MARKER: HVC0-READY' "$T/serial.log" 2>/dev/null ||
	fail "the guest did not bring up /dev/hvc0"

exec 5<>/dev/tcp/127.0.0.1/$port || fail "cannot connect to tcp port $port"
x=$(( RANDOM % 900 + 100 )) y=$(( RANDOM % 900 + 100 ))
want=$(( x * y ))
# The shell may still be starting: repeat the command until it answers.
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
	printf 'echo $((%d*%d))\n' $x $y >&5
	while IFS= read -r -t 3 line <&5; do
		line=${line%$'\r'}
		if [ "$line" = "$want" ]; then
			! grep -q Sanitizer "$T/daemon.log" || fail "sanitizer report"
			echo "check-qemu: PASSED: the guest computed $x*$y = $want over TCP"
			exit 0
		fi
	done
done
fail "no '$want' from the guest within 60 s"
