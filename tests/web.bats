#!/usr/bin/env bats
# The web backend (backends/web.c): its HTTP answers, and WebSockets played
# by tests/wsclient (see the top of tests/wsclient.c) against a guest played
# by tests/frontend.  The page in a real browser: tests/browser.bats.

load helpers

WSCLIENT=$TOP/tests/wsclient
WSUNIT=$TOP/tests/wsunit
ASSETS=$TOP/web/node_modules/@xterm/xterm

setup() { common_setup; }
teardown() { common_teardown; }

# start_web ARGS...: one device on $T/s0, its console on the web at $WPORT.
start_web() {
	WPORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" "$@"
}

# http RAW-REQUEST: send it (printf %b) to $WPORT (on $WADDR, default
# 127.0.0.1); the response goes to
# $T/resp and its status line (without the CR) to $STATUS.
http() {
	exec 7<>"/dev/tcp/${WADDR:-127.0.0.1}/$WPORT"
	printf '%b' "$1" >&7
	timeout 5 cat <&7 >"$T/resp"
	exec 7>&-
	STATUS=$(head -n 1 "$T/resp" | tr -d '\r')
}

# get PATH [HEADER-LINES]: a plain GET with the right Host.
get() {
	http "GET $1 HTTP/1.1\r\nHost: 127.0.0.1:$WPORT\r\n${2:-}\r\n"
}

# silent_connections N: N connections to $WPORT that never send a byte,
# their fds in the array SILENT (oldest first); close_silent closes them.
silent_connections() {
	local i fd
	SILENT=()
	for i in $(seq "$1"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$WPORT"
		SILENT+=("$fd")
	done
}
close_silent() {
	local fd
	for fd in "${SILENT[@]}"; do exec {fd}>&-; done
}

# host_answers HOST STATUS: GET / with "Host: HOST" is answered STATUS
# (e.g. "403 Forbidden").
host_answers() {
	http "GET / HTTP/1.1\r\nHost: $1\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 $2" ] || { echo "Host: $1 -> $STATUS, not $2"; return 1; }
}

# ws [--OPTION...] PATH STEP...: run wsclient against $WPORT; show why on
# failure.
ws() {
	local -a opts=()
	while [[ "$1" == --* ]]; do opts+=("$1"); shift; done
	local path=$1; shift
	run "$WSCLIENT" "${opts[@]}" "$WPORT" "$path" "$@"
	if [ "$status" -ne 0 ]; then
		echo "wsclient $path $* -> status $status: $output"
		show_logs
		return 1
	fi
}

# guest STEP...: the frontend in the background, as the guest; GUEST is
# its pid (wait "$GUEST" at the end).
guest() {
	"$FRONTEND" "$T/s0" "$@" 2>"$T/fe.err" 3>&- &
	GUEST=$!
	BG_PIDS+=("$GUEST")
}

daemon_fds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
fds_are() { [ "$(daemon_fds)" -eq "$1" ]; }

@test "web: SHA-1 (FIPS 180 vectors), base64, and the accept value of RFC 6455's example" {
	run "$WSUNIT"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok accept for RFC 6455's example key: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="* ]]
	[[ "$output" == *"ok sha1 one million 'a': 34aa973cd4c4daa4f61eeb2bdbad27316534016f"* ]]
}

# start_web_four: 2 devices of 2 ports (the second named serial0): consoles
# 0..3 on the web at $WPORT.
start_web_four() {
	WPORT=$(free_port)
	start_daemon --socket-path="$T/s" --socket-count=2 --port=serial0 \
		--backend=web --web-port="$WPORT"
}

@test "web: one start-up line per console gives its address" {
	start_web_four
	for k in 0 1 2 3; do
		grep -q "console $k: .*: web http://127.0.0.1:$WPORT/console/$k\$" "$T/daemon.log"
	done
}

@test "web: GET / lists device, port, name and clients" {
	start_web_four
	get /
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	grep -q '<td><a href="/console/3">console 3</a></td><td>1</td><td>1</td><td>serial0</td><td>0</td>' "$T/resp" ||
		{ cat "$T/resp"; return 1; }
	# a WebSocket on console 0 is a client of it
	"$WSCLIENT" --timeout=20 "$WPORT" /console/0/ws wait-file "$T/done" 2>"$T/ws.err" 3>&- &
	BG_PIDS+=("$!")
	wait_log "$T/daemon.log" "console 0: web .* connected"
	get /
	grep -q '<td>console 0</a></td><td>0</td><td>0</td><td></td><td>1</td>' <(sed 's|<a href="/console/0">||' "$T/resp") ||
		{ cat "$T/resp"; return 1; }
	touch "$T/done"
}

@test "web: GET /console/k is the terminal page" {
	[ -f "$ASSETS/lib/xterm.js" ] || skip "no xterm.js (make web-assets)"
	start_web --web-assets="$TOP/web"
	get /console/0
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	grep -q '<script src="/assets/xterm.js"></script>' "$T/resp"
	grep -q 'new WebSocket' "$T/resp"
}

@test "web: the assets come from --web-assets, found in the folder npm installed into" {
	[ -f "$ASSETS/lib/xterm.js" ] || skip "no xterm.js (make web-assets)"
	# the folder npm installed into (its node_modules/@xterm/xterm) is found
	start_web --web-assets="$TOP/web"
	run grep -q warning "$T/daemon.log"
	[ "$status" -eq 1 ]
	get /assets/xterm.js
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	grep -qi '^Content-Type: text/javascript' "$T/resp"
	# the body is the file, byte for byte
	cmp <(sed '1,/^\r$/d' "$T/resp") "$ASSETS/lib/xterm.js"
	get /assets/xterm.css
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	cmp <(sed '1,/^\r$/d' "$T/resp") "$ASSETS/css/xterm.css"
}

@test "web: without xterm.js the start warns and says what to install" {
	start_web --web-assets="$T"
	grep -q "warning: web: no lib/xterm.js and css/xterm.css in $T: pages show plain text; install with: npm install --prefix $T @xterm/xterm@6.0.0" "$T/daemon.log"
}

@test "web: without xterm.js the page says what to install" {
	start_web --web-assets="$T"
	get /console/0
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	grep -q 'npm install --prefix DIR @xterm/xterm@6.0.0' "$T/resp"
}

@test "web: without xterm.js the assets are 404, and no path from the request is used" {
	start_web --web-assets="$T"
	get /assets/xterm.js
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
	# no path from the request is ever used
	get /assets/../../etc/passwd
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
}

@test "web: a WebSocket gets the history then live output, types into the guest, shared with a TCP client" {
	WPORT=$(free_port) PORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=network,web --web-port="$WPORT" \
		--tcp-port="$PORT"
	guest init handshake write 'before anyone\n' expect 'typed in the browser' \
		write 'after typing\n'
	wait_log "$T/daemon.log" "the guest's console port is ready"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	ws /console/0/ws expect 'before anyone\n' send 'typed in the browser' \
		expect 'after typing\n'
	wait "$GUEST" || { cat "$T/fe.err"; return 1; }
	# the TCP client saw the same console
	read_until_line 5 "after typing"
}

@test "web: one of three ways in (network,unix,web): all serve the console at once" {
	WPORT=$(free_port) PORT=$(free_port)
	# more ways in than the two a console had room for before (a crash)
	start_daemon --socket-path="$T/s" --backend=network,unix,web --tcp-port="$PORT" \
		--unix-path="$T/u" --web-port="$WPORT"
	grep -q "console 0: device 0 port 0: tcp 127.0.0.1:$PORT; unix $T/u0; web http://127.0.0.1:$WPORT/console/0\$" "$T/daemon.log" ||
		{ show_logs; return 1; }
	guest init handshake write 'to all three\n' expect 'from the web' write 'done\n'
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	ws /console/0/ws expect 'to all three' send 'from the web' expect 'done'
	read_until_line 5 "done"
	# the unix client replays the history: the same console
	exec 6< <(exec socat -u "UNIX-CONNECT:$T/u0" - 3>&-)
	BG_PIDS+=("$!")
	read_until_line 6 "to all three"
	read_until_line 6 "done"
	wait "$GUEST" || { cat "$T/fe.err"; return 1; }
}

@test "web: a fragmented message (with a ping between fragments) reaches the guest whole" {
	start_web
	guest init handshake write 'ready\n' expect 'one-two-three-four' write 'got it\n'
	ws /console/0/ws expect 'ready' frag 4 'one-two-three-four' expect 'got it'
	wait "$GUEST" || { cat "$T/fe.err"; return 1; }
}

@test "web: a ping is answered with a pong carrying its payload" {
	start_web
	ws /console/0/ws ping 'are you there' ping '' close
}

@test "web: an unmasked client frame is refused: close 1002" {
	start_web
	ws /console/0/ws unmasked 'no mask' expect-close 1002
	[[ "$output" == "close 1002 unmasked frame from the client" ]]
	wait_log "$T/daemon.log" "web .*: unmasked frame from the client; closing it"
}

@test "web: an oversize frame is refused: close 1009" {
	start_web
	ws /console/0/ws big 1048576 expect-close 1009
	[[ "$output" == "close 1009 frame over 4096 bytes" ]]
}

@test "web: the page's size report {\"cols\":C,\"rows\":R} sets the console's size" {
	start_web
	guest init --size handshake --resize=80x24 write 'ready\n' expect-resize 132 43 write 'resized\n'
	ws /console/0/ws expect ready text '{"cols":132,"rows":43}' expect resized
	wait "$GUEST" || { cat "$T/fe.err"; return 1; }
}

@test "web: a WebSocket from another Origin is refused: 403" {
	start_web
	ws --origin=http://evil.example --refused=403 /console/0/ws
	[ "$output" = "HTTP/1.1 403 Forbidden" ]
	grep -q "GET /console/0/ws: 403 Origin is not this server" "$T/daemon.log"
	# no Origin (not a browser) is fine
	ws --no-origin /console/0/ws close
}

@test "web: a request for another Host name is refused: 403 (DNS rebinding)" {
	start_web
	host_answers "attacker.example:$WPORT" "403 Forbidden"
	host_answers "localhost:$WPORT" "200 OK"
}

@test "web: --web-token: a wrong or missing token is refused: 403" {
	start_web --web-token=s3cr3t
	grep -q "web http://127.0.0.1:$WPORT/console/0?token=s3cr3t\$" "$T/daemon.log"
	get /
	[ "$STATUS" = "HTTP/1.1 403 Forbidden" ]
	grep -q 'wrong or missing token' "$T/resp"
	get '/console/0?token=wrong'
	[ "$STATUS" = "HTTP/1.1 403 Forbidden" ]
	ws --refused=403 '/console/0/ws?token=s3cr3t0'
	ws --refused=403 --header='Authorization: Bearer wrong' /console/0/ws
	# right, in the URL or in a header
	get '/console/0?token=s3cr3t'
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	get / 'Authorization: Bearer s3cr3t\r\n'
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	grep -q 'href="/console/0?token=s3cr3t"' "$T/resp"
	ws '/console/0/ws?x=1&token=s3cr3t' close
	ws --header='Authorization: Bearer s3cr3t' /console/0/ws close
}

@test "web: a request line that is not HTTP gets 400" {
	start_web
	http "NONSENSE\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
}

@test "web: a request without Host gets 400 that says so" {
	start_web
	http "GET / HTTP/1.1\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
	grep -q 'no Host header' "$T/resp"
}

@test "web: an unknown path, a console that does not exist, and /console/00 get 404" {
	start_web
	get /nothing-here
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
	get /console/1
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
	get /console/00
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
}

@test "web: a method other than GET gets 405 with Allow: GET" {
	start_web
	http "POST / HTTP/1.1\r\nHost: 127.0.0.1:$WPORT\r\nContent-Length: 0\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 405 Method Not Allowed" ]
	grep -q '^Allow: GET' "$T/resp"
}

@test "web: a WebSocket version other than 13 gets 426 naming 13" {
	start_web
	get /console/0/ws 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n'
	[ "$STATUS" = "HTTP/1.1 426 Upgrade Required" ]
	grep -q '^Sec-WebSocket-Version: 13' "$T/resp"
}

@test "web: a WebSocket request with a bad key, or no upgrade, gets 400" {
	start_web
	get /console/0/ws 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
	get /console/0/ws
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
}

@test "web: headers over the limit get 431, and the daemon still serves" {
	start_web
	get / "X-Padding: $(head -c 9000 /dev/zero | tr '\0' a)\r\n"
	[ "$STATUS" = "HTTP/1.1 431 Request Header Fields Too Large" ]
	get /
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
}

@test "web: a browser's icon request gets 204 without a 404 in the log" {
	start_web
	get /favicon.ico
	[ "$STATUS" = "HTTP/1.1 204 No Content" ]
	run grep -q favicon "$T/daemon.log"
	[ "$status" -eq 1 ]
}

@test "web: 100 connections opened and dropped leave no fd behind" {
	start_web
	local before
	before=$(daemon_fds)
	run "$WSCLIENT" --storm=100 "$WPORT" /console/0/ws
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	wait_until 10 fds_are "$before" ||
		{ echo "daemon fds: $(daemon_fds), want $before"; ls -l "/proc/$DAEMON_PID/fd"; return 1; }
	# over the limit of 16 per console, the rest were told
	grep -q 'GET /console/0/ws: 503 this console has too many web clients' "$T/daemon.log"
	ws /console/0/ws close
}

@test "web: 40 silent connections cannot keep a request out: the oldest idle ones give way" {
	start_web
	silent_connections 40
	get /
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	# the first ones were closed to make room
	run timeout 5 cat <&"${SILENT[0]}"
	[ "$status" -eq 0 ]
	close_silent
}

@test "web: a browser that reads gets all 8 MiB the guest writes, in order, unskipped" {
	start_web
	"$WSCLIENT" "$WPORT" /console/0/ws save '\nEND-OF-OUTPUT\n' "$T/got" \
		>"$T/ws.out" 2>"$T/ws.err" 3>&- &
	local reader=$!
	BG_PIDS+=("$reader")
	wait_log "$T/daemon.log" "console 0: web .* connected"
	fe "$T/s0" init handshake write-bytes 8388608 write '\nEND-OF-OUTPUT\n'
	wait "$reader" || { cat "$T/ws.err"; show_logs; return 1; }
	# the notices of the frontend's arrival first
	{ notices 'frontend connected' 'the guest opened the console'
	  "$FRONTEND" --pattern 8388608; printf '\nEND-OF-OUTPUT\n'; } >"$T/stream"
	cmp "$T/stream" "$T/got"
	run grep -q 'is not reading' "$T/daemon.log"
	[ "$status" -eq 1 ]
	echo "# websocket: $(cat "$T/ws.out")" >&3
}

@test "web: a browser that does not read skips ahead and is told, as a TCP client" {
	start_web
	"$WSCLIENT" --timeout=60 --rcvbuf=4096 "$WPORT" /console/0/ws wait-file "$T/go" \
		expect 'bytes of output skipped]' expect '\nEND-OF-OUTPUT\n' \
		>"$T/ws.out" 2>"$T/ws.err" 3>&- &
	local stalled=$!
	BG_PIDS+=("$stalled")
	wait_log "$T/daemon.log" "console 0: web .* connected"
	# the guest is never held up (each frontend wait is bounded)
	fe "$T/s0" init handshake write-bytes 8388608 write '\nEND-OF-OUTPUT\n'
	grep -q "web .* is not reading; it skips output it cannot take" "$T/daemon.log" ||
		{ show_logs; return 1; }
	touch "$T/go"
	wait "$stalled" || { cat "$T/ws.err"; show_logs; return 1; }
	wait_log "$T/daemon.log" "web .* caught up; [0-9]+ bytes of output were skipped"
}

@test "web: --web-* options without --backend=web are a usage error" {
	run "$DAEMON" --socket-path="$T/s" --backend=network --web-port=8000
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-port, --web-address, --web-assets, --web-token and --web-origin need --backend=web"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=web --web-token='a b'
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-token: use 1 to 64 letters, digits and - . _ ~"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=web --web-address=nowhere.invalid
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-address: cannot resolve 'nowhere.invalid'"* ]]
}

@test "web: listening beyond loopback warns" {
	WPORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" --web-address=0.0.0.0
	grep -q "warning: web consoles listen on 0.0.0.0:$WPORT: anyone who can reach it gets the guest's console (no --web-token)" "$T/daemon.log"
}

@test "web: client bytes reach the log escaped (\\xHH) and capped, never raw" {
	start_web
	# a lone LF would forge a log line; ESC would reach the operator's terminal
	http "GET /x\nvhost-device-console:forged\x1b[2J HTTP/1.1\r\nHost: 127.0.0.1:$WPORT\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
	grep -qF 'GET /x\x0avhost-device-console:forged\x1b[2J: 404' "$T/daemon.log" ||
		{ show_logs; return 1; }
	http "G\x9bT\\\\ / HTTP/1.1\r\nHost: 127.0.0.1:$WPORT\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 405 Method Not Allowed" ]
	grep -qF 'G\x9bT\x5c /: 405' "$T/daemon.log" || { show_logs; return 1; }
	http "GET / HTTP/1.1\r\nHost: evil\nvhost-device-console: forged\x1b]0;owned\x07\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 403 Forbidden" ]
	grep -qF "403 Host is not this server: 'evil\x0avhost-device-console: forged\x1b]0;owned\x07'" "$T/daemon.log"
	http "\x1b[31mNONSENSE\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
	grep -qF "400 malformed request: '\x1b[31mNONSENSE'" "$T/daemon.log"
	# a long path is cut, and the cut says how much is missing
	get "/$(head -c 6000 /dev/zero | tr '\0' a)"
	[ "$STATUS" = "HTTP/1.1 404 Not Found" ]
	grep -qE 'GET /a+\.\.\.\(\+[0-9]+ bytes\): 404' "$T/daemon.log" || { show_logs; return 1; }
	# a WebSocket's close reason is the client's text too
	ws /console/0/ws close-why 'bye\nvhost-device-console: forged'
	wait_log "$T/daemon.log" "disconnected \(close 1000 'bye.x0avhost-device-console: forged'\)"
	# no line was forged, and no control byte but the newlines got through
	run grep '^vhost-device-console: \?forged' "$T/daemon.log"
	[ "$status" -eq 1 ]
	run env LC_ALL=C grep '[^[:print:]]' "$T/daemon.log"
	[ "$status" -eq 1 ]
	[ "$(LC_ALL=C grep -c '^vhost-device-console: ' "$T/daemon.log")" -eq "$(wc -l <"$T/daemon.log")" ]
}

@test "web: any loopback address is loopback: --web-address=127.0.0.2 keeps DNS rebinding out" {
	WPORT=$(free_port) WADDR=127.0.0.2
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" --web-address=$WADDR
	run grep warning: "$T/daemon.log"
	[ "$status" -eq 1 ]
	host_answers "attacker.example:$WPORT" "403 Forbidden"
	# the address we listen on is a Host, and so is localhost
	host_answers "127.0.0.2:$WPORT" "200 OK"
	host_answers "localhost:$WPORT" "200 OK"
	# another port, or none (not port 80), is not this server
	host_answers "127.0.0.2" "403 Forbidden"
	host_answers "127.0.0.2:1$WPORT" "403 Forbidden"
}

@test "web: [::ffff:127.0.0.1] is loopback too, and [::1] a Host there" {
	WPORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" \
		--web-address=::ffff:127.0.0.1
	run grep warning: "$T/daemon.log"
	[ "$status" -eq 1 ]
	host_answers "[::ffff:127.0.0.1]:$WPORT" "200 OK"
	host_answers "[::1]:$WPORT" "200 OK"
	host_answers "rebind.example:$WPORT" "403 Forbidden"
}

@test "network: --tcp-address=127.0.0.2 is loopback: no warning" {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --socket-count=2 --backend=network \
		--tcp-port="$PORT" --tcp-address=127.0.0.2
	run grep warning: "$T/daemon.log"
	[ "$status" -eq 1 ]
}

@test "network: --tcp-address=0.0.0.0 warns once, for all consoles" {
	PORT=$(free_port 2)
	start_daemon --socket-path="$T/s" --socket-count=2 --backend=network \
		--tcp-port="$PORT" --tcp-address=0.0.0.0
	[ "$(grep -c "warning: consoles listen on 0.0.0.0: anyone who can reach it gets the guest's console" "$T/daemon.log")" -eq 1 ]
}

@test "web: on port 80 a Host without the port is this server (browsers leave the default out)" {
	[ "$(id -u)" -eq 0 ] || skip "port 80 needs root"
	! (exec 9<>/dev/tcp/127.0.0.1/80) 2>/dev/null || skip "port 80 is in use"
	WPORT=80
	start_daemon --socket-path="$T/s" --backend=web --web-port=80
	host_answers "127.0.0.1" "200 OK"
	host_answers "localhost:80" "200 OK"
	# a browser's WebSocket there: Origin without the port, as Host
	local line
	exec 7<>/dev/tcp/127.0.0.1/80
	printf '%b' "GET /console/0/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" >&7
	IFS= read -t 5 -r line <&7
	exec 7>&-
	[ "$line" = $'HTTP/1.1 101 Switching Protocols\r' ]
	host_answers "evil.example" "403 Forbidden"
}

@test "web: a response still going out is never evicted for a new connection" {
	# an asset bigger than the socket buffers: it goes out as the client reads
	mkdir -p "$T/pkg/lib" "$T/pkg/css"
	head -c 8388608 /dev/urandom >"$T/pkg/lib/xterm.js"
	: >"$T/pkg/css/xterm.css"
	start_web --web-assets="$T/pkg"
	exec 8<>"/dev/tcp/127.0.0.1/$WPORT"
	printf 'GET /assets/xterm.js HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$WPORT" >&8
	# 40 silent connections: the idle ones give way, not the download
	silent_connections 40
	get /
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	timeout 20 cat <&8 >"$T/download"
	exec 8>&-
	close_silent
	cmp <(sed '1,/^\r$/d' "$T/download") "$T/pkg/lib/xterm.js"
}

@test "web: nothing printed is cut silently: a 64-byte --web-token whole, a longer one refused" {
	local token
	token=$(head -c 64 /dev/zero | tr '\0' t)
	WPORT=$(free_port)
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" \
		--web-address=0:0:0:0:0:ffff:127.0.0.1 --web-token="$token"
	grep -q "web http://\[0:0:0:0:0:ffff:127.0.0.1\]:$WPORT/console/0?token=$token\$" "$T/daemon.log" ||
		{ show_logs; return 1; }
	run "$DAEMON" --socket-path="$T/s" --backend=web --web-token="${token}x"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-token: use 1 to 64 letters, digits and - . _ ~"* ]]
}

@test "web: a log line over 4 KiB is cut, and the cut says how much" {
	local dir
	dir=$T/$(head -c 3000 /dev/zero | tr '\0' d)
	start_web --web-assets="$dir"
	grep -qE "^vhost-device-console: warning: web: no lib/xterm.js and css/xterm.css in $T/d+: .*d\.\.\.\(\+[0-9]+ bytes\)\$" "$T/daemon.log" ||
		{ head -c 300 "$T/daemon.log"; return 1; }
}

@test "web: a WebSocket that typed more than the hold and left is seen gone, its slot freed (guest takes no input)" {
	start_web
	local i
	# no guest yet: input waits.  Half leave with all their input read
	# (hold and frame buffer exactly full), half with more still waiting.
	for i in $(seq 8); do
		ws /console/0/ws flood 8192 send ''
		ws /console/0/ws flood 65536
	done
	wait_until 10 eval '[ "$(grep -c "went away; some of its input never reached the guest" "$T/daemon.log")" -ge 8 ]' ||
		{ show_logs; return 1; }
	# the ones that left more behind are found when their slots are wanted
	for i in $(seq 16); do
		"$WSCLIENT" --timeout=20 "$WPORT" /console/0/ws wait-file "$T/done" \
			2>>"$T/ws.err" 3>&- &
		BG_PIDS+=("$!")
	done
	wait_until 10 eval '[ "$(grep -c "console 0: web .* connected" "$T/daemon.log")" -eq 32 ]' ||
		{ show_logs; return 1; }
	run grep -c '503 this console has too many web clients' "$T/daemon.log"
	[ "$output" = 0 ] || { show_logs; return 1; }
	touch "$T/done"
}

# ws_status HOST ORIGIN [QUERY]: the status line (without the CR) a
# browser's WebSocket handshake for console 0 with these Host and Origin
# gets, in $STATUS.
ws_status() {
	exec 7<>"/dev/tcp/127.0.0.1/$WPORT"
	printf '%b' "GET /console/0/ws${3:-} HTTP/1.1\r\nHost: $1\r\nOrigin: $2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" >&7
	STATUS=
	IFS= read -t 5 -r STATUS <&7
	exec 7>&-
	STATUS=${STATUS%$'\r'}
}

@test "web: --web-origin: its host[:port] as Host and it as Origin are this server (a reverse proxy's)" {
	start_web --web-origin=HTTPS://Console.Example:8443 --web-origin=http://other.example
	grep -q "web: also served as https://console.example:8443 (--web-origin)" "$T/daemon.log"
	grep -q "web: also served as http://other.example (--web-origin)" "$T/daemon.log"
	host_answers "console.example:8443" "200 OK"
	http "GET /console/0 HTTP/1.1\r\nHost: CONSOLE.example:8443\r\nOrigin: https://console.example:8443\r\n\r\n"
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	ws_status console.example:8443 https://console.example:8443
	[ "$STATUS" = "HTTP/1.1 101 Switching Protocols" ]
	# the default port, left out or not, as a browser or a proxy writes it
	ws_status other.example http://other.example
	[ "$STATUS" = "HTTP/1.1 101 Switching Protocols" ]
	ws_status other.example:80 http://other.example:80
	[ "$STATUS" = "HTTP/1.1 101 Switching Protocols" ]
	# one public origin's page may use another's Host (both are ours)
	ws_status other.example https://console.example:8443
	[ "$STATUS" = "HTTP/1.1 101 Switching Protocols" ]
	# reached directly, as before
	ws /console/0/ws close
}

@test "web: --web-origin lets in only itself: another host, scheme or port as Host or Origin is 403" {
	start_web --web-origin=https://console.example:8443
	local h
	for h in console.example console.example:443 console.example:8444 \
	         evil.example:8443 'console.example:8443.evil.example' \
	         'user@console.example:8443'; do
		http "GET / HTTP/1.1\r\nHost: $h\r\n\r\n"
		[ "$STATUS" = "HTTP/1.1 403 Forbidden" ] || { echo "Host $h: $STATUS"; return 1; }
	done
	grep -q "GET /: 403 Host is not this server: 'console.example:8444'" "$T/daemon.log"
	local o
	for o in http://console.example:8443 https://console.example \
	         https://evil.example:8443 https://console.example:8443/ null; do
		ws_status console.example:8443 "$o"
		[ "$STATUS" = "HTTP/1.1 403 Forbidden" ] || { echo "Origin $o: $STATUS"; return 1; }
	done
	grep -q "GET /console/0/ws: 403 Origin is not this server: 'http://console.example:8443'" "$T/daemon.log"
	# reached directly, the page must still be this server's own
	ws_status "127.0.0.1:$WPORT" https://evil.example
	[ "$STATUS" = "HTTP/1.1 403 Forbidden" ]
	ws_status "127.0.0.1:$WPORT" "http://127.0.0.1:$WPORT"
	[ "$STATUS" = "HTTP/1.1 101 Switching Protocols" ]
}

@test "web: --web-origin keeps --web-token: through the public origin a wrong or missing token is 403" {
	start_web --web-origin=https://console.example --web-token=s3cr3t
	ws_status console.example https://console.example
	[ "$STATUS" = "HTTP/1.1 403 Forbidden" ]
	ws_status console.example https://console.example '?token=wrong'
	[ "$STATUS" = "HTTP/1.1 403 Forbidden" ]
	ws_status console.example https://console.example '?token=s3cr3t'
	[ "$STATUS" = "HTTP/1.1 101 Switching Protocols" ]
}

@test "web: a malformed --web-origin is a usage error that says the form" {
	local u
	for u in console.example https://console.example/ https://console.example/path \
	         ftp://console.example https:// 'https://user@console.example' \
	         https://console.example:0 https://console.example:65536 \
	         'https://console.example:' 'https://[::1' 'https://a b'; do
		run "$DAEMON" --socket-path="$T/s" --backend=web --web-origin="$u"
		[ "$status" -eq 2 ] || { echo "$u: status $status: $output"; return 1; }
		[[ "$output" == *"--web-origin: '$u' is not http(s)://host[:port] with nothing after it, e.g. https://console.example"* ]] ||
			{ echo "$u: $output"; return 1; }
	done
	run "$DAEMON" --socket-path="$T/s" --backend=web $(for i in $(seq 9); do echo --web-origin=https://c$i.example; done)
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-origin: at most 8 origins"* ]]
	run "$DAEMON" --socket-path="$T/s" --backend=network --web-origin=https://console.example
	[ "$status" -eq 2 ]
	[[ "$output" == *"--web-origin need --backend=web"* ]]
}

@test "web: a request whose lines end in a bare LF is answered 400, never left waiting" {
	start_web
	http "GET / HTTP/1.1\nHost: 127.0.0.1:$WPORT\n\n"
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
	grep -q "malformed request: 'GET / HTTP/1.1'" "$T/daemon.log"
	http "GET / HTTP/1.1\r\nHost: 127.0.0.1:$WPORT\n\r\n"
	[ "$STATUS" = "HTTP/1.1 400 Bad Request" ]
}


@test "web: --web-view-token is read-only: told so first, gets history and output, its typing and size reports discarded" {
	start_web --web-token=full --web-view-token=view --size=80x24
	guest init --size handshake --resize=80x24 write 'history\n' hold "$T/go" \
		write 'live\n' hold "$T/done" expect-config-size 80 24
	wait_log "$T/daemon.log" "the guest's console port is ready"
	"$WSCLIENT" "$WPORT" '/console/0/ws?token=view' expect '{"readonly":true}history\n' \
		send 'typed by a viewer' text '{"cols":100,"rows":40}' \
		expect 'live\n' close 2>"$T/ws.err" 3>&- &
	local w=$!
	BG_PIDS+=("$w")
	wait_log "$T/daemon.log" "console 0: web .* connected \\(read-only\\)$"
	wait_until 10 status_has "viewers typed 17 bytes, discarded" || { show_logs; return 1; }
	status_has ", in 0, " || { show_logs; return 1; }
	touch "$T/go"
	wait "$w" || { show_logs; return 1; }
	wait_log "$T/daemon.log" "console 0: web .* \\(read-only\\) .*; 17 bytes of its input discarded$" ||
		{ show_logs; return 1; }
	# the viewer's size report (before its close) did not resize: 80x24
	touch "$T/done"
	wait "$GUEST" || { show_logs; return 1; }
}

@test "web: the index shows writers apart from viewers, its links with the viewer's own token, never the full one" {
	start_web --web-token=full --web-view-token=view
	"$WSCLIENT" --timeout=20 "$WPORT" '/console/0/ws?token=view' wait-file "$T/done" \
		2>"$T/ws.err" 3>&- &
	BG_PIDS+=("$!")
	wait_log "$T/daemon.log" "console 0: web .* connected \\(read-only\\)$"
	get '/?token=view'
	[ "$STATUS" = "HTTP/1.1 200 OK" ]
	grep -q '<th>writers</th><th>viewers</th>' "$T/resp" || { cat "$T/resp"; return 1; }
	grep -q 'href="/console/0?token=view"' "$T/resp" || { cat "$T/resp"; return 1; }
	! grep -q 'token=full' "$T/resp" || { cat "$T/resp"; return 1; }
	grep -q '<td>1</td><td>0</td><td>1</td></tr>' "$T/resp" || { cat "$T/resp"; return 1; }
	get '/?token=full'
	grep -q 'href="/console/0?token=full"' "$T/resp" || { cat "$T/resp"; return 1; }
	touch "$T/done"
}

@test "web: --read-only=web makes every WebSocket a viewer, whatever its token" {
	start_web --web-token=full --read-only=web
	guest init handshake write 'shown\n' hold "$T/done"
	wait_log "$T/daemon.log" "the guest's console port is ready"
	ws '/console/0/ws?token=full' expect '{"readonly":true}' expect 'shown\n' \
		send 'typed' close
	wait_until 10 status_has "viewers typed 5 bytes, discarded" || { show_logs; return 1; }
	status_has ", in 0, " || { show_logs; return 1; }
	touch "$T/done"
	wait "$GUEST" || { show_logs; return 1; }
}
