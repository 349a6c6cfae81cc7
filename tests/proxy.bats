#!/usr/bin/env bats
# The web consoles behind a reverse proxy: Debian's nginx terminating TLS
# with a self-signed certificate (tests/nginx.conf.in, the configuration
# README gives) in front of the daemon, on https://console.test:$NPORT
# (no DNS: curl --resolve, chromium's resolver rules).  The page in
# chromium: tests/browser/proxy.mjs.
#
# The screenshot is kept: tests/artefacts/web-proxy.png (VC_ARTEFACTS=DIR
# puts it elsewhere).

load helpers

ASSETS=$TOP/web/node_modules/@xterm/xterm
DRIVER=$TOP/tests/browser/proxy.mjs
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

setup() {
	common_setup
	[ -x "$NGINX" ] || skip "no nginx (package nginx)"
	command -v openssl >/dev/null || skip "no openssl (package openssl)"
	command -v curl >/dev/null || skip "no curl (package curl)"
	WPORT=$(free_port)
	NPORT=$(free_port)
	PUBLIC=https://console.test:$NPORT
}

teardown() {
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		echo "--- daemon.log:" >&2
		cat "$T/daemon.log" >&2 2>/dev/null
		echo "--- nginx-error.log:" >&2
		cat "$T/nginx-error.log" >&2 2>/dev/null
	fi
	common_teardown
}

# start_nginx [USER:PASSWORD]: a self-signed certificate for console.test,
# then nginx on 127.0.0.1:$NPORT forwarding to the daemon's $WPORT, with
# basic authentication when given a user; waits until it listens.
start_nginx() {
	local user= auth=
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
		-subj /CN=console.test -addext subjectAltName=DNS:console.test \
		2>"$T/openssl.err" || { cat "$T/openssl.err"; return 1; }
	if [ -n "${1:-}" ]; then
		printf '%s:%s\n' "${1%%:*}" "$(openssl passwd -apr1 "${1#*:}")" >"$T/htpasswd"
		auth="auth_basic \"consoles\"; auth_basic_user_file $T/htpasswd;"
	fi
	# as root, nginx's workers would be nobody, who cannot read $T
	[ "$(id -u)" -ne 0 ] || user="user root;"
	sed -e "s|@T@|$T|g; s|@PORT@|$NPORT|g; s|@WPORT@|$WPORT|g" \
	    -e "s|@USER@|$user|; s|@AUTH@|$auth|" "$TOP/tests/nginx.conf.in" >"$T/nginx.conf"
	"$NGINX" -p "$T" -c "$T/nginx.conf" -e "$T/nginx-error.log" \
		-g 'daemon off;' </dev/null >"$T/nginx.out" 2>&1 3>&- &
	BG_PIDS+=("$!")
	wait_until 10 eval "(exec 9<>/dev/tcp/127.0.0.1/$NPORT) 2>/dev/null" ||
		{ cat "$T/nginx.out" "$T/nginx-error.log"; return 1; }
}

# via PATH [CURL-ARGS...]: GET $PUBLIC/PATH through nginx; the status code
# in $STATUS, the body in $T/body.
via() {
	local path=$1; shift
	STATUS=$(curl -sk --max-time 10 --resolve "console.test:$NPORT:127.0.0.1" \
		-o "$T/body" -w '%{http_code}' "$@" "$PUBLIC$path")
}

# via_ws ORIGIN [CURL-ARGS...]: a browser's WebSocket handshake for console
# 0 through nginx; the status code in $STATUS (a 101 is held open: cut
# after 2 s).
via_ws() {
	local origin=$1; shift
	STATUS=$(curl -sk --max-time 2 --resolve "console.test:$NPORT:127.0.0.1" \
		-o /dev/null -w '%{http_code}' -H "Origin: $origin" \
		-H 'Upgrade: websocket' -H 'Connection: Upgrade' \
		-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
		-H 'Sec-WebSocket-Version: 13' "$@" "$PUBLIC/console/0/ws") || true
}

@test "proxy: without --web-origin, the page and its WebSocket through nginx are refused: 403 (the public Host is not this server)" {
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT"
	start_nginx
	via /console/0
	[ "$STATUS" = 403 ] || { echo "page: $STATUS"; cat "$T/body"; return 1; }
	grep -q "403 Host is not this server: 'console.test:$NPORT'" "$T/daemon.log"
	via_ws "$PUBLIC"
	[ "$STATUS" = 403 ]
}

@test "proxy: with --web-origin, a page through nginx over TLS types into the guest and shows its output (chromium)" {
	need_browser "$ASSETS"
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" \
		--web-assets="$ASSETS" --web-origin="$PUBLIC"
	start_nginx
	guest_start --timeout=90 "$T/s0" init handshake \
		write 'hello-through-proxy\r\n' expect 'typed-through-proxy\r' \
		write 'proxy-ok\r\n'
	run_page 120 "$DRIVER" "$PUBLIC/console/0" "$ARTEFACTS/web-proxy.png"
	guest_passed
	# it came through nginx, as the public origin
	grep -q "console 0: web 127.0.0.1:[0-9]* connected" "$T/daemon.log"
	grep -q 'GET /console/0/ws HTTP/1.1" 101' "$T/nginx-access.log"
}

@test "proxy: with --web-origin, an Origin or a Host not listed is still refused through nginx: 403" {
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" \
		--web-origin="$PUBLIC"
	start_nginx
	via /console/0
	[ "$STATUS" = 200 ]
	via_ws "$PUBLIC"
	[ "$STATUS" = 101 ]
	via_ws https://evil.test
	[ "$STATUS" = 403 ]
	grep -q "403 Origin is not this server: 'https://evil.test'" "$T/daemon.log"
	# the proxy's own name, but plain http: another origin
	via_ws "http://console.test:$NPORT"
	[ "$STATUS" = 403 ]
	# another name pointed at the proxy (DNS rebinding through it)
	STATUS=$(curl -sk --max-time 10 --resolve "other.test:$NPORT:127.0.0.1" \
		-o /dev/null -w '%{http_code}' "https://other.test:$NPORT/console/0")
	[ "$STATUS" = 403 ]
	grep -q "403 Host is not this server: 'other.test:$NPORT'" "$T/daemon.log"
}

@test "proxy: --web-token still holds through nginx, and nginx's basic auth comes first" {
	start_daemon --socket-path="$T/s" --backend=web --web-port="$WPORT" \
		--web-origin="$PUBLIC" --web-token=s3cr3t
	start_nginx console:pa55word
	via '/console/0?token=s3cr3t'
	[ "$STATUS" = 401 ]
	via '/console/0?token=s3cr3t' -u console:wrong
	[ "$STATUS" = 401 ]
	via /console/0 -u console:pa55word
	[ "$STATUS" = 403 ]
	grep -q 'wrong or missing token' "$T/body"
	via '/console/0?token=s3cr3t' -u console:pa55word
	[ "$STATUS" = 200 ]
	via_ws "$PUBLIC" -u console:pa55word
	[ "$STATUS" = 403 ]
	via_ws "$PUBLIC" -u console:pa55word -G -d token=s3cr3t
	[ "$STATUS" = 101 ]
}
