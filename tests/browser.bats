#!/usr/bin/env bats
# The web backend's page in a real browser against a real guest: Debian's
# chromium, headless, driven by playwright-core (tests/browser/console.mjs)
# on the console of a user-mode Linux guest, shared with a TCP client.
#
# The screenshots of each run are kept: tests/artefacts/web-console.png and
# web-plain.png (VC_ARTEFACTS=DIR puts them elsewhere).

load helpers
load uml

ASSETS=$TOP/web/node_modules/@xterm/xterm
DRIVER=$TOP/tests/browser/console.mjs
PLAIN=$TOP/tests/browser/plain.mjs

setup() {
	common_setup
	command -v "$UML_BIN" >/dev/null || skip "no $UML_BIN (package user-mode-linux)"
	need_browser "$ASSETS"
	uml_rootfs "$T/root"
}

teardown() { uml_teardown 'guest lines' 'UML-|hvc|Kernel panic'; }

@test "browser: type into a UML guest's console in chromium, see the product, resize, share" {
	WPORT=$(free_port) PORT=$(free_port)
	start_daemon --socket-path="$T/vc.sock" --backend=network,web --tcp-port="$PORT" \
		--web-port="$WPORT" --web-assets="$ASSETS"
	uml_boot "$T/vc.sock0"
	uml_wait_ready 60
	# a TCP client on the same console, all along
	uml_con_open "$PORT"
	local x=$(( RANDOM % 90000 + 10000 )) y=$(( RANDOM % 90000 + 10000 ))
	run_page 180 "$DRIVER" "http://127.0.0.1:$WPORT/console/0" \
		"$ARTEFACTS/web-console.png" "$x" "$y"
	[ -s "$ARTEFACTS/web-console.png" ]
	echo "screenshot: $ARTEFACTS/web-console.png" >&3
	# the TCP client saw the browser's command and its answer
	uml_con_expect_line "$(( x * y ))" 20
	grep -q "console 0: web 127.0.0.1:[0-9]* connected" "$T/daemon.log"
}

@test "browser: without xterm.js the page says what to install and works as plain text" {
	WPORT=$(free_port)
	start_daemon --socket-path="$T/vc.sock" --backend=web --web-port="$WPORT"
	guest_start --timeout=60 "$T/vc.sock0" init handshake \
		write '\x1b[1mBOLD\x1b[0m plain\r\n' expect 'typed-in-plain\r' \
		write 'plain-ok\r\n'
	run_page 120 "$PLAIN" "http://127.0.0.1:$WPORT/console/0" \
		"$ARTEFACTS/web-plain.png"
	guest_passed
}

# got_is_want: $T/got without the daemon's notices is $T/want.
got_is_want() {
	perl -0pe 's/(\r\n)?\[vhost-device-console: [^\]]*\]\r\n//g' "$T/got" |
		cmp -s - "$T/want"
}

@test "browser: an xterm.js viewer attaching to a history full of queries sends the guest not one byte" {
	WPORT=$(free_port) PORT=$(free_port)
	start_daemon --socket-path="$T/vc.sock" --backend=network,web --tcp-port="$PORT" \
		--web-port="$WPORT" --web-assets="$ASSETS"
	fe "$T/vc.sock0" init handshake write 'prompt$ \x1b[6n\x1b[c\x1b[>c\x1b[5n\x1b]11;?\x07\x1b]10;?\x1b\\\x1b[?6n\x1b[14t\x1bP$qm\x1b\\\x05\r\nreplayed$ \x1b[6n'
	# the guest echoes what it gets: its first bytes must be what is typed
	guest_start --timeout=60 "$T/vc.sock0" init handshake echo-loop 4
	# a TCP client reads along: its replay, then the guest's echo
	socat -u "TCP:127.0.0.1:$PORT" "CREATE:$T/got" 3>&- &
	BG_PIDS+=("$!")
	wait_log "$T/daemon.log" "console 0: client .* connected"
	run timeout 120 node "$TOP/tests/browser/replay.mjs" \
		"http://127.0.0.1:$WPORT/console/0" 'replayed$' TYPD
	echo "$output"
	[ "$status" -eq 0 ]
	guest_passed
	# the guest echoed TYPD and nothing else (the notices of its coming
	# and going, each with the line end it starts with, left out)
	printf 'prompt$ \r\nreplayed$ TYPD' >"$T/want"
	wait_until 20 got_is_want || { od -c "$T/got"; return 1; }
}

@test "browser: a --web-view-token page shows a read-only badge, the output, and sends no keystrokes" {
	WPORT=$(free_port)
	start_daemon --socket-path="$T/vc.sock" --backend=web --web-port="$WPORT" \
		--web-assets="$ASSETS" --web-token=full --web-view-token=view
	"$FRONTEND" --timeout=60 "$T/vc.sock0" init handshake \
		write 'viewer sees this\r\n' hold "$T/done" 60 2>"$T/fe.err" 3>&- &
	local guest=$!
	BG_PIDS+=("$guest")
	mkdir -p "$ARTEFACTS"
	run timeout 120 node "$TOP/tests/browser/readonly.mjs" \
		"http://127.0.0.1:$WPORT/console/0?token=view" "$ARTEFACTS/web-readonly.png"
	echo "$output"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	grep -q "console 0: web .* connected (read-only)" "$T/daemon.log"
	touch "$T/done"
	wait "$guest" || { cat "$T/fe.err"; return 1; }
}
